package monitor

import (
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
)

// attachNotify serves FileNotifyAttach: tier 1's readiness descriptor for the file
// service's notifications (FileNotify), which tier 0 makes readable when the monitor
// sets BootInfo.HostReady.
func (m *machine) attachNotify(req *abi.FileRequest) int64 {
	if m.files == nil {
		return -int64(unix.ENODEV)
	}
	atomic.StoreUint64(&m.info.HostReadyFD, req.Handle+1)
	m.notifyFiles()
	return 0
}

// notifyFiles has the file service wake the guest, as the NIC does: HostReady set, then
// the wake-up vector to vCPU 0. A fork's copy, whose tier 1 attached its descriptor in
// the parent, is given it again once its file service exists.
func (m *machine) notifyFiles() {
	m.files.SetNotify(func() {
		atomic.StoreUint64(&m.info.HostReady, 1)
		m.vm.SignalMSI(0, abi.VectorWakeup)
	}, &m.info.HostWatches)
}
