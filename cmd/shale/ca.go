package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/shale-store/shale/internal/clustertls"
)

func init() { commands = append(commands, newCACmd) }

// newCACmd is `shale ca issue`: the cluster CA and certificates for
// --internal-tls outside `shale dev`.
func newCACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Manage the cluster CA of --internal-tls: create it, issue certificates for meta, nodes and gateways",
	}
	var dir, name string
	var hosts []string
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Issue a certificate (creating the CA in --dir first if there is none)",
		Long: `issue writes NAME.pem and NAME-key.pem (0600) into --dir: a certificate for
server and client authentication signed by the cluster CA in --dir (ca.pem,
ca-key.pem; created, 0600, when missing), valid for every --host (the IP
addresses and DNS names the process is reached at). Give the process
--internal-tls --internal-tls-cert DIR/NAME.pem --internal-tls-key
DIR/NAME-key.pem --internal-tls-ca DIR/ca.pem. Copy only those three files to
its machine; ca-key.pem stays where certificates are issued.`,
		Example: `  shale ca issue --dir ./cluster-ca --name node-1 --host 10.0.0.11 --host node-1.internal`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				return fmt.Errorf("give at least one --host")
			}
			ca, err := clustertls.LoadOrCreateCA(dir, "shale cluster CA")
			if err != nil {
				return err
			}
			cert, key, err := ca.Issue(dir, name, hosts)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "--internal-tls --internal-tls-cert %s --internal-tls-key %s --internal-tls-ca %s\n", cert, key, ca.CertFile)
			return nil
		},
	}
	issue.Flags().StringVar(&dir, "dir", "", "directory of the cluster CA and the certificates (created 0700)")
	issue.Flags().StringVar(&name, "name", "", "name of the certificate (file name and common name), e.g. node-1")
	issue.Flags().StringSliceVar(&hosts, "host", nil, "IP address or DNS name the process is reached at (repeatable)")
	_ = issue.MarkFlagRequired("dir")
	_ = issue.MarkFlagRequired("name")
	cmd.AddCommand(issue)
	return cmd
}
