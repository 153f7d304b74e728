// Package fdspec reads the descriptors a started program inherits as the monitor hands
// them on: to the new pith (pith run --spawned-fds) and from it to tier 1 (--fd).
package fdspec

import (
	"encoding/hex"
	"strconv"
	"strings"
)

// Parse reads one descriptor's spec: len(nums) numbers (decimal, or 0x hexadecimal) and
// last a path in hexadecimal, all separated by colons. It reports whether spec was that.
func Parse(spec string, nums []uint64) (path string, ok bool) {
	f := strings.Split(spec, ":")
	if len(f) != len(nums)+1 {
		return "", false
	}
	for i := range nums {
		n, err := strconv.ParseUint(f[i], 0, 64)
		if err != nil {
			return "", false
		}
		nums[i] = n
	}
	p, err := hex.DecodeString(f[len(nums)])
	return string(p), err == nil
}
