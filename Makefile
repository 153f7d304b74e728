# pith: `make` builds bin/pith, the guest kernel bin/pith-kernel and containerd's shim
# bin/containerd-shim-pith-v2; `make test` runs the tests.
GO ?= go
BIN ?= bin
# The kernel runs in the physmap (abi.PhysBase + abi.KernelBase), out of the way of the app.
KERNEL_LDFLAGS := -E=github.com/pithvm/pith/guest/tier0.start -T=0x7e0000401000

.PHONY: all kernel pith shim test demo clean

all: pith kernel shim

# Static: with cgo (which pflag's import of net brings in) pith starts through the
# dynamic loader and libc, 1.3 ms more per start here (3.1 against 1.8 ms to an error).
pith:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/pith ./cmd/pith

# containerd runs it as io.containerd.pith.v2 (docs/kubernetes.md); it runs the pith beside it.
shim:
	CGO_ENABLED=0 $(GO) build -o $(BIN)/containerd-shim-pith-v2 ./cmd/containerd-shim-pith-v2

kernel:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags='$(KERNEL_LDFLAGS)' -o $(BIN)/pith-kernel ./guest/cmd/pith-kernel

demo: all
	$(BIN)/pith selftest
	CGO_ENABLED=0 $(GO) build -o $(BIN)/hello ./bench/hello
	$(BIN)/pith run $(BIN)/hello

test:
	bash tools/test.sh

clean:
	rm -rf bin
