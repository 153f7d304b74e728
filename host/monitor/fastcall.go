package monitor

import (
	"bytes"
	"debug/elf"
	"fmt"
	"strings"

	"github.com/pithvm/pith/abi"
)

// maxFastCalls bounds the sites passed on: a Go program has one of each pattern, and
// tier 1's stub page holds ~30.
const maxFastCalls = 32

// fastCallSites finds the system-call sites tier 1 rewrites (abi.FastCallPatterns) in a
// Go executable, as tier 1's --fast-calls value ("KIND@VADDR,..."); "" for anything
// else. It reads the file where it is mapped into guest memory, natively: the guest
// would pay a hypervisor first touch for each page it scanned.
func fastCallSites(image []byte) string {
	f, err := elf.NewFile(bytes.NewReader(image))
	if err != nil || f.Section(".go.buildinfo") == nil {
		return ""
	}
	var sites []string
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_LOAD || prog.Flags&elf.PF_X == 0 || prog.Off+prog.Filesz > uint64(len(image)) {
			continue
		}
		text := image[prog.Off : prog.Off+prog.Filesz]
		for kind, p := range abi.FastCallPatterns {
			for at := 0; ; {
				i := bytes.Index(text[at:], p.Code)
				if i < 0 {
					break
				}
				at += i
				if va := prog.Vaddr + uint64(at); va%abi.FastCallAlign == 0 && len(sites) < maxFastCalls {
					sites = append(sites, fmt.Sprintf("%d@%#x", kind, va))
				}
				at++
			}
		}
	}
	return strings.Join(sites, ",")
}
