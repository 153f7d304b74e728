// Package peers finds the programs the benchmarks compare pith with: gVisor's runsc.
package peers

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
)

// Runsc is gVisor's runsc: the one bench/gvisor.sh built, else one on $PATH.
func Runsc() (string, error) {
	if p, err := filepath.Abs(filepath.Join("bench", ".cache", "runsc")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("runsc"); err == nil {
		return p, nil
	}
	return "", errors.New("runsc not found: bench/gvisor.sh builds it")
}
