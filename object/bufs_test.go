package object

import "testing"

func TestStageClass(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want int
	}{
		{0, 0}, {1, 0}, {stageMin, 0}, {stageMin + 1, 1}, {2 * stageMin, 1},
		{1 << 20, 4}, {1<<20 + 1, 5}, {int64(stageMin) << (stageClasses - 1), stageClasses - 1},
		{int64(stageMin)<<(stageClasses-1) + 1, stageClasses},
	} {
		if got := stageClass(c.n); got != c.want {
			t.Errorf("stageClass(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// TestStageBufsRecycle: a buffer put back is handed out again for its
// class, empty; sizes off the classes are never pooled.
func TestStageBufsRecycle(t *testing.T) {
	var p sizedBufs
	b := p.get(300 << 10)
	if len(b) != 0 || cap(b) != 512<<10 {
		t.Fatalf("get(300 KiB): len %d cap %d, want 0 and 512 KiB", len(b), cap(b))
	}
	b = append(b, 1, 2, 3)
	again := false
	for range 10 { // sync.Pool may drop what it is given (the race detector makes it drop a quarter)
		p.put(b)
		c := p.get(257 << 10)
		if len(c) != 0 || cap(c) != 512<<10 {
			t.Fatalf("get(257 KiB): len %d cap %d", len(c), cap(c))
		}
		if &c[:1][0] == &b[:1][0] {
			again = true
			break
		}
	}
	if !again {
		t.Error("a buffer put back was never handed out again")
	}
	big := p.get(int64(stageMin)<<stageClasses + 5)
	if cap(big) != stageMin<<stageClasses+5 {
		t.Errorf("a size above every class: cap %d", cap(big))
	}
	p.put(big)                      // ignored
	p.put(make([]byte, 0, 100<<10)) // not a class's size: ignored
	if c := p.get(100 << 10); cap(c) != 128<<10 {
		t.Errorf("get(100 KiB) after an odd-sized put: cap %d, want 128 KiB", cap(c))
	}
}
