package kernel

import (
	"bytes"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// maxInterpreters is how many #! scripts one execve goes through, script to interpreter,
// as Linux's BINPRM_MAX_RECURSION.
const maxInterpreters = 4

// scriptHead is how much of a file execve reads for a #! line, as Linux's BINPRM_BUF_SIZE.
const scriptHead = 256

// interpreted turns an execve of a script whose first line is #! into one of its
// interpreter, as Linux's binfmt_script does: the interpreter is the line's first word,
// and argv becomes the interpreter as written, the rest of the line as one argument if
// there is any, the script as execve named it, then argv[1:]. A script's interpreter
// may be a script in turn, up to maxInterpreters deep (then ELOOP). Anything else is
// left to the monitor, which runs ELF programs only.
func interpreted(p *Process, name, path string, argv []string) (string, []string, int64) {
	for range maxInterpreters + 1 {
		head := readGuestHead(path, scriptHead)
		if len(head) < 2 || head[0] != '#' || head[1] != '!' {
			return path, argv, 0
		}
		line := head[2:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		line = bytes.Trim(line, " \t")
		interp, arg := line, []byte(nil)
		if i := bytes.IndexAny(line, " \t"); i >= 0 {
			interp, arg = line[:i], bytes.Trim(line[i:], " \t")
		}
		if len(interp) == 0 {
			return "", nil, -linux.ENOEXEC
		}
		next := []string{string(interp)}
		if len(arg) > 0 {
			next = append(next, string(arg))
		}
		next = append(next, name)
		if len(argv) > 1 {
			next = append(next, argv[1:]...)
		}
		var e int64
		if path, e = p.absPath(atFDCWD, string(interp)); e != 0 {
			return "", nil, e
		}
		name, argv = string(interp), next
	}
	return "", nil, -linux.ELOOP
}

// readGuestHead is the first n bytes (or fewer) of the guest's regular file at path; nil
// for what cannot be read so.
func readGuestHead(path string, n int) []byte {
	r := abi.FileRequest{Op: abi.FileOpen, Flags: syscall.O_RDONLY}
	keep := hostString(&r.Path, &r.PathLen, path)
	h := fileRequest(&r)
	runtime.KeepAlive(keep)
	if h < 0 {
		return nil
	}
	defer fileRequest(&abi.FileRequest{Op: abi.FileClose, Handle: uint64(h)})
	b := hostBuffer(n)
	rr := abi.FileRequest{Op: abi.FileRead, Handle: uint64(h), Buf: uint64(uintptr(unsafe.Pointer(&b[0]))), Len: uint64(n)}
	got := fileRequest(&rr)
	if got <= 0 {
		return nil
	}
	return b[:got]
}
