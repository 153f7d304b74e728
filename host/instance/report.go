package instance

import (
	"encoding/json"
	"os"
)

// Report is how a guest ended, as pith run --report writes it for the program that ran
// pith (containerd-shim-pith-v2), which cannot tell a guest that ran out of memory from
// its exit status alone.
type Report struct {
	ExitCode    int    `json:"exit_code"`
	Signal      int    `json:"signal,omitempty"`
	OutOfMemory bool   `json:"out_of_memory,omitempty"`
	Error       string `json:"error,omitempty"` // why pith could not run the guest, or how it crashed
}

// Write writes r to path.
func (r Report) Write(path string) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// ReadReport reads the report pith run --report wrote to path.
func ReadReport(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}
