package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/monitor"
	"github.com/pithvm/pith/host/monitor/boot"
)

type doctorOptions struct {
	format string
}

func newDoctorCommand() *cobra.Command {
	var o doctorOptions
	c := &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can run pith guests, and say what is wrong if not",
		Args:  cobra.NoArgs,
		RunE:  func(*cobra.Command, []string) error { return runDoctor(&o) },
	}
	c.Flags().StringVar(&o.format, "format", "", "output format: json")
	return c
}

type doctorReport struct {
	KVM        string          `json:"kvm"`
	Hypervisor string          `json:"hypervisor,omitempty"`
	HostKernel string          `json:"host_kernel,omitempty"`
	TSCKHz     uint64          `json:"tsc_khz,omitempty"`
	Checks     []monitor.Check `json:"checks,omitempty"`
	Kernel     string          `json:"kernel"`
	Warm       string          `json:"warm"`
	OK         bool            `json:"ok"`
}

func runDoctor(o *doctorOptions) error {
	r := doctorReport{OK: true}
	info, err := monitor.Probe()
	if err != nil {
		r.KVM, r.OK = err.Error(), false
	} else {
		r.KVM = "ok"
		r.TSCKHz, r.Hypervisor, r.HostKernel, r.Checks = info.TSCKHz, info.Module, info.Kernel, info.Checks
		if info.Unmet != "" {
			r.KVM, r.OK = info.Unmet, false
		}
	}
	if k, err := boot.LoadKernel(kernelPath()); err != nil {
		r.Kernel, r.OK = err.Error(), false
	} else {
		k.Close()
		r.Kernel = "ok (" + kernelPath() + ")"
	}
	r.Warm = "off (PITH_WARM=1 turns warm starts on)"
	if warmEnabled() {
		if dir, err := warmDir(); err != nil {
			r.Warm = "on, but unusable: " + err.Error()
		} else {
			r.Warm = fmt.Sprintf("on; %d warm VMs in %s", liveServers(dir), dir)
		}
	}
	if o.format == "json" {
		json.NewEncoder(os.Stdout).Encode(r)
	} else {
		mark := func(ok bool) string {
			if ok {
				return "ok  "
			}
			return "FAIL"
		}
		fmt.Printf("%s kvm: %s\n", mark(r.KVM == "ok"), r.KVM)
		if r.Hypervisor != "" {
			fmt.Printf("info hypervisor: %s on Linux %s, TSC %d kHz\n", r.Hypervisor, r.HostKernel, r.TSCKHz)
		}
		for _, c := range r.Checks {
			fmt.Printf("%s %s\n", mark(c.OK), c)
		}
		fmt.Printf("%s kernel: %s\n", mark(r.Kernel[:2] == "ok"), r.Kernel)
		fmt.Printf("info warm start: %s\n", r.Warm)
	}
	if !r.OK {
		return statusError(1)
	}
	return nil
}
