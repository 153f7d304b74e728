package kernel

import "testing"

// tier0Ready models tier 0's side of a readiness descriptor: its events, and the edges
// it makes for an edge-triggered watch (events it did not have).
type tier0Ready struct {
	events uint32
	edges  uint32
}

func (f *tier0Ready) set(events uint32, or bool) {
	if or {
		events |= f.events
	}
	f.edges |= events &^ f.events
	f.events = events
}

const evOut = 4 // EPOLLOUT

// A callback that runs between update's reading of the endpoint and its telling tier 0
// (the endpoint became writable there) must still leave tier 0 with the event and an
// edge after the lowering: otherwise a writer that got EAGAIN waits for ever.
func TestReadinessCallbackRacingUpdate(t *testing.T) {
	var t0 tier0Ready
	var r readiness
	endpoint := uint32(evOut)
	raced := false
	r.tell = func(events uint32, or bool) {
		if !or && !raced && events&evOut == 0 {
			// update is lowering EPOLLOUT; before it lands the peer acknowledges, the
			// endpoint turns writable and netstack's callback runs to the end.
			raced = true
			endpoint = evOut
			r.arrived(evOut)
		}
		t0.set(events, or)
	}
	t0.set(evOut, false)
	r.level.Store(evOut)

	endpoint = 0 // the send buffer filled: the app's write got EAGAIN
	t0.edges = 0
	r.update(func() uint32 { return endpoint })
	if !raced {
		t.Fatal("the race was not staged: update never lowered EPOLLOUT")
	}
	if t0.events&evOut == 0 || t0.edges&evOut == 0 {
		t.Fatalf("tier 0 holds events %#x with edges %#x after the race; want EPOLLOUT in both (the endpoint is writable)", t0.events, t0.edges)
	}
}

// Without a race, update tells tier 0 only of changes, and a callback only of new events.
func TestReadinessTellsOnlyChanges(t *testing.T) {
	var t0 tier0Ready
	var r readiness
	told := 0
	r.tell = func(events uint32, or bool) { told++; t0.set(events, or) }
	r.update(func() uint32 { return evOut })
	r.update(func() uint32 { return evOut })
	r.arrived(evOut)
	if told != 1 || t0.events != evOut {
		t.Fatalf("told tier 0 %d times, which holds %#x; want once, EPOLLOUT", told, t0.events)
	}
	r.arrived(1)
	r.update(func() uint32 { return 0 })
	if told != 3 || t0.events != 0 || t0.edges != evOut|1 {
		t.Fatalf("told %d times, tier 0 holds %#x with edges %#x; want 3, 0, %#x", told, t0.events, t0.edges, evOut|1)
	}
}

// Fewer events are stored without a call; more, or any after a race, are told, so that
// tier 0 makes the edge and wakes epoll.
func TestReadinessLowersWithoutACall(t *testing.T) {
	var t0 tier0Ready
	var r readiness
	told, lowered := 0, 0
	r.tell = func(events uint32, or bool) { told++; t0.set(events, or) }
	r.lower = func(events uint32) {
		lowered++
		if events&^t0.events != 0 {
			t.Errorf("lowering tier 0's %#x to %#x raises it", t0.events, events)
		}
		t0.events = events
	}
	r.update(func() uint32 { return evOut | 1 })
	r.update(func() uint32 { return evOut }) // a read took the data
	if told != 1 || lowered != 1 || t0.events != evOut {
		t.Fatalf("told %d, lowered %d, tier 0 holds %#x; want 1, 1, EPOLLOUT", told, lowered, t0.events)
	}
	t0.edges = 0
	r.arrived(1)
	if told != 2 || t0.edges != 1 {
		t.Fatalf("data arriving after the lowering: told %d times, edges %#x; want 2, EPOLLIN", told, t0.edges)
	}
	endpoint := uint32(0)
	r.lower = func(events uint32) {
		lowered++
		endpoint = evOut // a callback lands between the lowering and update's check
		r.arrived(evOut)
		t0.events = events
	}
	r.update(func() uint32 { return endpoint })
	if t0.events&evOut == 0 {
		t.Fatalf("tier 0 lost EPOLLOUT to a callback racing a lowering: holds %#x", t0.events)
	}
}

// New events go to tier 0 through raise where there is one (no call unless a thread
// sleeps on them), and only events tier 0 lacks.
func TestReadinessRaisesWithoutTelling(t *testing.T) {
	var r readiness
	told, raised := 0, uint32(0)
	r.tell = func(events uint32, or bool) { told++ }
	r.raise = func(events uint32) { raised |= events }
	r.arrived(1)
	r.arrived(1)
	r.arrived(evOut)
	if told != 0 || raised != 1|evOut {
		t.Fatalf("told %d times, raised %#x; want 0, %#x", told, raised, 1|evOut)
	}
}
