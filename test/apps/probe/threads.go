package main

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Goroutines on several threads, synchronising through futexes.
func threads() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				mu.Lock()
				total++
				mu.Unlock()
				if j%100 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	fmt.Println("total", total)
}

// A CPU-bound goroutine with no calls must not starve the ticker (async preemption).
func spin() {
	runtime.GOMAXPROCS(1)
	go func() {
		for {
		}
	}()
	t := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 5; i++ {
		<-t.C
	}
	fmt.Println("ticked")
}

// A short sleep, and whether it lasted as long as asked.
func sleep() {
	t0 := time.Now()
	time.Sleep(20 * time.Millisecond)
	fmt.Println("slept", time.Since(t0) >= 20*time.Millisecond)
}

// A timeout of "forever" (sleep infinity passes the largest time_t) sleeps.
func longSleep() {
	done := make(chan struct{})
	go func() {
		ts := syscall.Timespec{Sec: 1<<63 - 1}
		// A handled signal for this thread ends the sleep with EINTR, natively as in
		// pith (where one reached it in ~1 run of 20): only a sleep that ends by
		// itself counts.
		for syscall.Nanosleep(&ts, nil) == syscall.EINTR {
		}
		close(done)
	}()
	select {
	case <-done:
		fmt.Println("woke at once")
	case <-time.After(300 * time.Millisecond):
		fmt.Println("still sleeping")
	}
}

// forever sleeps until a signal ends it.
func forever() {
	fmt.Println("sleeping until a signal")
	for {
		time.Sleep(time.Hour)
	}
}
