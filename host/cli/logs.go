package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/pithvm/pith/host/instance"
)

type logsOptions struct {
	follow     bool
	tail       string
	timestamps bool
	since      string
}

func newLogsCommand() *cobra.Command {
	var o logsOptions
	c := &cobra.Command{
		Use:   "logs [flags] UNIKERNEL",
		Short: "Print the output of a unikernel run with -d",
		Args:  cobra.ExactArgs(1),
		RunE:  func(_ *cobra.Command, args []string) error { return runLogs(&o, args[0]) },
	}
	c.Flags().BoolVarP(&o.follow, "follow", "f", false, "follow the output until the unikernel exits")
	c.Flags().StringVarP(&o.tail, "tail", "n", "all", "the number of lines to show from the end")
	c.Flags().BoolVarP(&o.timestamps, "timestamps", "t", false, "show when each line was written")
	c.Flags().StringVar(&o.since, "since", "", "lines since a time (2006-01-02T15:04:05Z) or for a duration back (10m)")
	return c
}

func runLogs(o *logsOptions, ref string) error {
	tail := -1
	if o.tail != "all" {
		n, err := strconv.Atoi(o.tail)
		if err != nil {
			return fmt.Errorf("--tail %s: give a number of lines, or all", o.tail)
		}
		if n >= 0 {
			tail = n
		}
	}
	var since time.Time
	if o.since != "" {
		var err error
		if since, err = parseSince(o.since, time.Now()); err != nil {
			return err
		}
	}
	store, err := openInstances()
	if err != nil {
		return err
	}
	inst, err := store.Get(ref)
	if err != nil {
		return err
	}
	print := func(e instance.Entry) {
		if e.Time.Before(since) {
			return
		}
		var w io.Writer = os.Stdout
		if e.Stream == "stderr" {
			w = os.Stderr
		}
		if o.timestamps {
			fmt.Fprint(w, e.Time.Format(time.RFC3339Nano)+" ")
		}
		io.WriteString(w, e.Log)
	}
	var last []instance.Entry
	pos, err := instance.ReadLog(inst.LogPath(), func(e instance.Entry) {
		if tail < 0 {
			print(e)
			return
		}
		if last = append(last, e); len(last) > tail {
			last = last[1:]
		}
	})
	if err != nil {
		return err
	}
	for _, e := range last {
		print(e)
	}
	if !o.follow {
		return nil
	}
	return instance.FollowLog(inst.LogPath(), pos, print, func() bool { return !inst.Live() })
}

// parseSince reads --since: an RFC 3339 time, a Unix time in seconds, or a duration back
// from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(v*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("--since %s: give a time (2006-01-02T15:04:05Z), a Unix time, or a duration (10m)", s)
}
