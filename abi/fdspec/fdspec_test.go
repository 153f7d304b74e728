package fdspec

import "testing"

func TestParse(t *testing.T) {
	var nums [3]uint64
	if path, ok := Parse("3:0x401:0:2f612f62", nums[:]); !ok || path != "/a/b" || nums != [3]uint64{3, 0x401, 0} {
		t.Errorf("Parse = %q, %v, %v", path, ok, nums)
	}
	if path, ok := Parse("3:4:5:", nums[:]); !ok || path != "" {
		t.Errorf("an empty path: %q, %v", path, ok)
	}
	for _, bad := range []string{"3:4:5", "3:4:5:6:", "3:x:5:", "-1:4:5:", "3:4:5:zz", "3:4:5:2f6"} {
		if _, ok := Parse(bad, nums[:]); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
