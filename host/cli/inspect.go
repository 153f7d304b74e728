package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

func newInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect UNIKERNEL...",
		Short: "Print what pith keeps of unikernels, as a JSON array",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return runInspect(args) },
	}
}

// inspected is one unikernel as inspect prints it, in the shape (and with the names) of
// Docker's container inspect, so that the same jq paths work: .State.Pid, .State.ExitCode.
type inspected struct {
	ID              string          `json:"Id"`
	Name            string          `json:"Name"`
	Created         time.Time       `json:"Created"`
	Path            string          `json:"Path"`
	Args            []string        `json:"Args"`
	State           inspectedState  `json:"State"`
	RestartCount    int             `json:"RestartCount"`
	LogPath         string          `json:"LogPath"`
	HostConfig      inspectedHost   `json:"HostConfig"`
	Config          inspectedConfig `json:"Config"`
	NetworkSettings inspectedNet    `json:"NetworkSettings"`
}

type inspectedState struct {
	Status     string    `json:"Status"`
	Running    bool      `json:"Running"`
	Restarting bool      `json:"Restarting"`
	Pid        int       `json:"Pid"`
	ExitCode   int       `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

type inspectedHost struct {
	RestartPolicy instance.RestartPolicy `json:"RestartPolicy"`
	AutoRemove    bool                   `json:"AutoRemove"`
	PortBindings  []string               `json:"PortBindings"`
	RunArgs       []string               `json:"RunArgs"`
}

type inspectedConfig struct {
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env"`
	WorkingDir string   `json:"WorkingDir"`
}

type inspectedNet struct {
	IPAddress string   `json:"IPAddress"`
	Ports     []string `json:"Ports"`
}

func runInspect(refs []string) error {
	store, err := openInstances()
	if err != nil {
		return err
	}
	out := []inspected{}
	failed := false
	for _, ref := range refs {
		inst, err := store.Get(ref)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: %v\n", err)
			failed = true
			continue
		}
		c, st := inst.Config, inst.State
		running := st.Status == instance.StatusRunning || st.Status == instance.StatusRestarting
		ports := append([]string{}, st.Ports...)
		out = append(out, inspected{
			ID: inst.ID, Name: "/" + c.Name, Created: c.Created, Path: c.App, Args: append([]string{}, c.AppArgs...),
			State: inspectedState{Status: st.Status, Running: running, Restarting: st.Status == instance.StatusRestarting,
				Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt},
			RestartCount: st.RestartCount, LogPath: inst.LogPath(),
			HostConfig:      inspectedHost{RestartPolicy: c.Restart, AutoRemove: c.AutoRemove, PortBindings: append([]string{}, c.Ports...), RunArgs: c.RunArgs},
			Config:          inspectedConfig{Cmd: append([]string{c.App}, c.AppArgs...), Env: c.Env, WorkingDir: c.Dir},
			NetworkSettings: inspectedNet{IPAddress: st.Address, Ports: ports},
		})
	}
	b, _ := json.MarshalIndent(out, "", "    ")
	fmt.Println(string(b))
	if failed {
		return statusError(1)
	}
	return nil
}
