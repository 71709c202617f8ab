// Command bench times Go's own context package on the operations that
// bench/rust times for polyctx, printing the same JSON lines, so that
// bench/run.py can put them side by side.
//
//	go run . [-quick]
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"
)

const hour = time.Hour

var (
	quick    = flag.Bool("quick", false, "fewer, shorter repetitions")
	lateness = flag.String("lateness", "", "only the lateness rows, labelled with this machine state (idle, loaded)")
	reps     = 15
	target   = 20 * time.Millisecond
	sink     any
)

func main() {
	flag.Parse()
	if *quick {
		reps, target = 3, 5*time.Millisecond
	}
	if *lateness != "" {
		deadlineLateness(*lateness)
		return
	}
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()

	measure("derive+cancel", 1, func(n int) time.Duration {
		return timed(n, func() {
			c, cancel := context.WithCancel(parent)
			cancel()
			sink = c
		})
	})
	measure("derive+cancel with deadline", 1, func(n int) time.Duration {
		return timed(n, func() {
			c, cancel := context.WithTimeout(parent, hour)
			cancel()
			sink = c
		})
	})
	live, cancelLive := context.WithCancel(parent)
	defer cancelLive()
	// Go has no separate is-done check: Err is how code asks.
	for _, op := range []string{"is_done", "err"} {
		measure(op, 1, func(n int) time.Duration {
			return timed(n, func() { sink = live.Err() })
		})
	}
	for _, depth := range []int{10, 100} {
		key, leaf := valueChain(depth)
		measure(fmt.Sprintf("value lookup depth %d", depth), 1, func(n int) time.Duration {
			return timed(n, func() { sink = leaf.Value(key) })
		})
	}
	measure("tree cancel 10k (per node)", 10_000, func(n int) time.Duration {
		var total time.Duration
		for i := 0; i < n; i++ {
			cancel, keep := tree(10_000)
			start := time.Now()
			cancel()
			total += time.Since(start)
			sink = keep
		}
		return total
	})
	measure("wake 10k async waiters (per waiter)", 10_000, func(n int) time.Duration {
		var total time.Duration
		for i := 0; i < n; i++ {
			total += wake(10_000)
		}
		return total
	})
	sharedParent(parent)
	afterFuncs()
	count := 1_000_000
	if *quick {
		count = 200_000
	}
	memory("live context", count, func() (context.Context, context.CancelFunc) { return context.WithCancel(parent) })
	memory("live deadline context", count, func() (context.Context, context.CancelFunc) { return context.WithTimeout(parent, hour) })
}

// sharedParent: goroutines deriving from one server-lifetime parent at
// once (bench/rust/src/threads.rs does the same), wall time per operation
// across all of them, with GOMAXPROCS at most the thread count.
func sharedParent(parent context.Context) {
	total, rounds := 2_000_000, 5
	if *quick {
		total, rounds = 200_000, 3
	}
	for _, threads := range []int{1, 2, 4, 8, 16} {
		prev := runtime.GOMAXPROCS(min(threads, runtime.NumCPU()))
		perThread := total / threads
		samples := make([]float64, rounds)
		for r := range samples {
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < threads; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for j := 0; j < perThread; j++ {
						c, cancel := context.WithCancel(parent)
						cancel()
						sink = c
					}
				}()
			}
			began := time.Now()
			close(start)
			wg.Wait()
			samples[r] = float64(time.Since(began).Nanoseconds()) / float64(perThread*threads)
		}
		runtime.GOMAXPROCS(prev)
		emitP99("scaling", fmt.Sprintf("shared parent derive+cancel, %d threads", threads), samples)
	}
}

// afterFuncs: 10,000 AfterFuncs on one context, then one cancel: when the
// cancel returns and when every function has run (each in a goroutine).
func afterFuncs() {
	const count = 10_000
	rounds := 7
	if *quick {
		rounds = 3
	}
	returned := make([]float64, rounds)
	allRan := make([]float64, rounds)
	for r := 0; r < rounds; r++ {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(count)
		for i := 0; i < count; i++ {
			context.AfterFunc(ctx, wg.Done)
		}
		began := time.Now()
		cancel()
		returned[r] = float64(time.Since(began).Nanoseconds())
		wg.Wait()
		allRan[r] = float64(time.Since(began).Nanoseconds())
	}
	emitP99("rust", "10k after-funcs: cancel returns", returned)
	emitP99("rust", "10k after-funcs: all have run", allRan)
}

// measure times op (n iterations per call, each handling `items` items)
// reps times and prints the median time per item.
func measure(op string, items int, f func(n int) time.Duration) {
	n := 1
	for {
		if d := f(n); d >= target/4 || n >= 1<<30 {
			n = int(math.Max(1, float64(target)/(float64(d)/float64(n))))
			break
		}
		n *= 4
	}
	samples := make([]float64, reps)
	for i := range samples {
		samples[i] = float64(f(n).Nanoseconds()) / float64(n) / float64(items)
	}
	emitP99("rust", op, samples)
}

// percentile is the nearest-rank q-quantile (0 to 1) of sorted samples,
// as bench/rust's harness takes it.
func percentile(sorted []float64, q float64) float64 {
	return sorted[int(math.Round(float64(len(sorted)-1)*q))]
}

// emitP99 prints the median of samples and their p99.
func emitP99(area, op string, samples []float64) {
	sort.Float64s(samples)
	fmt.Printf(`{"area":"%s","op":"%s","impl":"go","unit":"ns_per_op","value":%.3f,"p99":%.3f}`+"\n",
		area, op, percentile(samples, 0.5), percentile(samples, 0.99))
}

// deadlineLateness: from a deadline to the goroutine waiting on
// ctx.Done() running again, p50/p99/max over deadlines 2 to 3.8 ms ahead,
// beside the runtime's floor, a time.Timer for the same instant. bench/run.py
// runs this idle and under bench/load.py's load.
func deadlineLateness(load string) {
	count := 300
	if *quick {
		count = 50
	}
	var ours, floor []float64
	for i := 0; i < count; i++ {
		ahead := time.Duration(2000+(i%7)*300) * time.Microsecond
		ctx, cancel := context.WithTimeout(context.Background(), ahead)
		deadline, _ := ctx.Deadline()
		<-ctx.Done()
		ours = append(ours, float64(time.Since(deadline).Nanoseconds()))
		cancel()
		deadline = time.Now().Add(ahead)
		timer := time.NewTimer(time.Until(deadline))
		<-timer.C
		floor = append(floor, float64(time.Since(deadline).Nanoseconds()))
	}
	op := "go: goroutine waiting on <-ctx.Done()"
	emitLateness(op, "go context.WithTimeout", load, ours)
	emitLateness(op, "time.Timer", load, floor)
}

func emitLateness(op, impl, load string, samples []float64) {
	sort.Float64s(samples)
	fmt.Printf(`{"area":"lateness","op":"%s","impl":"%s","unit":"ns_per_op","load":"%s","value":%.0f,"p99":%.0f,"max":%.0f}`+"\n",
		op, impl, load, percentile(samples, 0.5), percentile(samples, 0.99), samples[len(samples)-1])
}

func timed(n int, f func()) time.Duration {
	start := time.Now()
	for i := 0; i < n; i++ {
		f()
	}
	return time.Since(start)
}

type otherKey struct{ i int }
type wantedKey struct{}

func valueChain(depth int) (any, context.Context) {
	leaf := context.WithValue(context.Background(), wantedKey{}, 1)
	for i := 1; i < depth; i++ {
		leaf = context.WithValue(leaf, otherKey{i}, i)
	}
	return wantedKey{}, leaf
}

// tree builds a root with sqrt(size) children each with as many children.
func tree(size int) (context.CancelFunc, []context.CancelFunc) {
	fan := int(math.Sqrt(float64(size)))
	root, cancel := context.WithCancel(context.Background())
	keep := make([]context.CancelFunc, 0, size)
	for i := 0; i < fan; i++ {
		child, c := context.WithCancel(root)
		for j := 0; j < size/fan-1; j++ {
			_, cc := context.WithCancel(child)
			keep = append(keep, cc)
		}
		keep = append(keep, c)
	}
	return cancel, keep
}

// wake parks `waiters` goroutines on Done and times one cancel until all return.
func wake(waiters int) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	var ready, done sync.WaitGroup
	ready.Add(waiters)
	done.Add(waiters)
	for i := 0; i < waiters; i++ {
		go func() {
			ready.Done()
			<-ctx.Done()
			done.Done()
		}()
	}
	ready.Wait()
	runtime.Gosched()
	start := time.Now()
	cancel()
	done.Wait()
	return time.Since(start)
}

// memory reports heap bytes per live context, the holding slices excluded.
func memory(op string, count int, derive func() (context.Context, context.CancelFunc)) {
	ctxs := make([]context.Context, 0, count)
	cancels := make([]context.CancelFunc, 0, count)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < count; i++ {
		c, cancel := derive()
		ctxs = append(ctxs, c)
		cancels = append(cancels, cancel)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perObject := float64(after.HeapAlloc-before.HeapAlloc) / float64(count)
	runtime.KeepAlive(ctxs)
	runtime.KeepAlive(cancels)
	fmt.Printf(`{"area":"memory","op":"heap bytes per %s","impl":"go","unit":"bytes","value":%.3f}`+"\n", op, perObject)
}
