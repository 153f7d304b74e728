package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

type psOptions struct {
	all    bool
	quiet  bool
	format string
}

func newPsCommand() *cobra.Command {
	var o psOptions
	c := &cobra.Command{
		Use:   "ps [flags]",
		Short: "List unikernels run with -d",
		Args:  cobra.NoArgs,
		RunE:  func(_ *cobra.Command, _ []string) error { return runPs(&o) },
	}
	c.Flags().BoolVarP(&o.all, "all", "a", false, "show all unikernels (default: running ones)")
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print IDs only")
	c.Flags().StringVar(&o.format, "format", "", "json (one object a line), or a Go template over the json fields, as {{.ID}} {{.Names}}; \"table TEMPLATE\" adds a header and aligns the columns")
	return c
}

// psRow is one unikernel as ps shows it; the fields are those of Docker's ps --format.
type psRow struct {
	ID         string
	Image      string
	Command    string
	CreatedAt  string
	RunningFor string
	Status     string
	State      string
	Ports      string
	Names      string
}

// psHeader is the header row of ps --format "table ...": each field's column name.
var psHeader = psRow{ID: "ID", Image: "IMAGE", Command: "COMMAND", CreatedAt: "CREATED AT",
	RunningFor: "CREATED", Status: "STATUS", State: "STATE", Ports: "PORTS", Names: "NAMES"}

func newPsRow(inst *instance.Instance, now time.Time) psRow {
	return psRow{
		ID:         inst.ID[:12],
		Image:      inst.Config.App,
		Command:    fmt.Sprintf("%q", strings.Join(append([]string{filepath.Base(inst.Config.App)}, inst.Config.AppArgs...), " ")),
		CreatedAt:  inst.Config.Created.Format("2006-01-02 15:04:05 -0700 MST"),
		RunningFor: humanDuration(now.Sub(inst.Config.Created)) + " ago",
		Status:     statusText(inst, now),
		State:      inst.State.Status,
		Ports:      portsText(inst),
		Names:      inst.Config.Name,
	}
}

// portsText is the PORTS column: Docker's 0.0.0.0:8080->80/tcp, while it runs.
func portsText(inst *instance.Instance) string {
	if inst.State.Status != instance.StatusRunning {
		return ""
	}
	return strings.Join(inst.State.Ports, ", ")
}

func runPs(o *psOptions) error {
	store, err := openInstances()
	if err != nil {
		return err
	}
	list, err := store.List()
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []psRow
	for _, inst := range list {
		if o.all || inst.State.Status == instance.StatusRunning || inst.State.Status == instance.StatusRestarting {
			rows = append(rows, newPsRow(inst, now))
		}
	}
	switch {
	case o.quiet:
		for _, r := range rows {
			fmt.Println(r.ID)
		}
	case o.format == "json":
		enc := json.NewEncoder(os.Stdout)
		for _, r := range rows {
			enc.Encode(r)
		}
	case o.format != "" && o.format != "table":
		text, table := strings.CutPrefix(o.format, "table ")
		t, err := template.New("format").Parse(text + "\n")
		if err != nil {
			return fmt.Errorf("--format: %v", err)
		}
		var out io.Writer = os.Stdout
		if table { // Docker's "table": a header of the columns' names, and aligned columns
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
			defer w.Flush()
			out, rows = w, append([]psRow{psHeader}, rows...)
		}
		for _, r := range rows {
			if err := t.Execute(out, r); err != nil {
				return fmt.Errorf("--format: %v", err)
			}
		}
	default:
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(w, "ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
		for _, r := range rows {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, truncate(r.Command, 22), r.RunningFor, r.Status, r.Ports, r.Names)
		}
		w.Flush()
	}
	return nil
}

// truncate shortens s to n characters with an ellipsis, as Docker's COMMAND column.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-2] + "…\""
}
