GO ?= go
BIN := bin/shale
PKGS := ./...

.PHONY: build test bench run lint fuzz test-big clean

build:
	$(GO) build -o $(BIN) ./cmd/shale

# Every test, including the end-to-end tests that start real shale processes.
test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 25m $(PKGS)

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 1 ./erasure ./placement ./storage/remote
	$(BIN) bench encode --k 10 --m 4

# The cluster on embedded defaults: one meta, 6 nodes over 3 zones, S3 on 127.0.0.1:9000.
run: build
	$(BIN) dev

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -version >/dev/null 2>&1; then \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS); \
	else echo "staticcheck unavailable; skipped"; fi

# Short fuzzing runs of every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$pkg || exit 1; \
		done; \
	done

# Big-object tests (2 GiB through a dev cluster); not part of `make test`.
test-big:
	SHALE_BIG=1 $(GO) test -count=1 -timeout 30m -run Big -v ./e2e

clean:
	rm -rf bin
