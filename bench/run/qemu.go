package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The QEMU peer: the same static binary as /init of a Linux microVM (Debian's kernel,
// an initramfs holding only the binary), booted by QEMU with TCG, as no Linux guest
// runs natively on kvm-pvm. The kernel comes from $PITH_BENCH_KERNEL or bench/qemu-kernel.sh.

// qemuKernel finds a Linux kernel image to boot, or says how to get one.
func qemuKernel() (string, error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return "", fmt.Errorf("qemu-system-x86_64 not installed: apt-get install qemu-system-x86")
	}
	if k := os.Getenv("PITH_BENCH_KERNEL"); k != "" {
		return k, nil
	}
	if ks, _ := filepath.Glob("bench/.cache/boot/vmlinuz-*"); len(ks) > 0 {
		return ks[len(ks)-1], nil
	}
	return "", fmt.Errorf("no Linux kernel: run bench/qemu-kernel.sh (Debian's, unpacked, not installed)")
}

// initramfs writes a newc cpio archive holding binary as /init.
func initramfs(path, binary string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	entry := func(ino int, name string, mode int, body []byte) {
		fmt.Fprintf(&b, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, 1, 0, len(body), 0, 0, 0, 0, len(name)+1, 0)
		b.WriteString(name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(body)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	entry(1, "init", 0o100755, data)
	entry(0, "TRAILER!!!", 0, nil)
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// qemuCommand boots the microVM: the kernel panics when /init exits, and -no-reboot
// turns the reboot that follows (panic=-1) into QEMU's exit.
func qemuCommand(kernel, initrd string) []string {
	return []string{"qemu-system-x86_64", "-M", "microvm", "-accel", "tcg", "-m", "256", "-nodefaults",
		"-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
		"-append", "console=ttyS0 quiet pci=off panic=-1 reboot=t"}
}
