package testinfra

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// CPU is the processor time used so far by this process and by the
// machine's PostgreSQL and Kafka broker (the processes named postgres
// and java), read from /proc. Benchmarks take one before and one after
// their timed part and report the difference per event, which tells a
// benchmark that is slower because it does more work from one that
// waits. Processes that start or exit between two readings count wrong
// (a PostgreSQL backend that closes takes its time with it), so the
// benchmarks keep their connections open across the timed part. On a
// system without /proc every figure is zero.
type CPU struct {
	Self, Database, Broker time.Duration
}

// ReadCPU returns the processor time used so far.
func ReadCPU() CPU {
	var c CPU
	c.Self = procCPU("self")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return c
	}
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' {
			continue
		}
		switch procName(pid) {
		case "postgres":
			c.Database += procCPU(pid)
		case "java":
			c.Broker += procCPU(pid)
		}
	}
	return c
}

// Since returns the processor time used between before and c.
func (c CPU) Since(before CPU) CPU {
	return CPU{Self: c.Self - before.Self, Database: c.Database - before.Database, Broker: c.Broker - before.Broker}
}

// Add returns the sum of c and d.
func (c CPU) Add(d CPU) CPU {
	return CPU{Self: c.Self + d.Self, Database: c.Database + d.Database, Broker: c.Broker + d.Broker}
}

// Report reports c, the processor time used for events events, per
// event, as three metrics of b: cpu-µs/event of this process,
// db-µs/event of PostgreSQL and broker-µs/event of the broker.
func (c CPU) Report(b *testing.B, events int) {
	b.Helper()
	if events <= 0 {
		return
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(events) }
	b.ReportMetric(per(c.Self), "cpu-µs/event")
	b.ReportMetric(per(c.Database), "db-µs/event")
	b.ReportMetric(per(c.Broker), "broker-µs/event")
}

// procName returns the command name of process pid ("" when gone).
func procName(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procCPU returns the user and system time of process pid (or "self").
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name, in parentheses, may hold spaces: the fields
	// counted from 3 start after its closing parenthesis.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	// Clock ticks: 100 per second on every Linux build Go runs on.
	return time.Duration(utime+stime) * (time.Second / 100)
}

// SpeedRef returns how long a fixed piece of work takes on this machine
// now: building a map of 100,000 short strings (allocation, hashing,
// memory), the best of five tries. The machine's speed drifts by half
// over minutes (a shared host; a pure arithmetic loop does not drift, so
// it is not the cores' clock), so a benchmark reports it beside its
// figures (ReportSpeedRef), and figures from different runs compare only
// with it.
func SpeedRef() time.Duration {
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		m := make(map[string]int)
		for k := range 100_000 {
			m[strconv.Itoa(k)] = k
		}
		best = min(best, time.Since(start))
	}
	return best
}

// ReportSpeedRef reports SpeedRef as the metric ref-ms of b.
func ReportSpeedRef(b *testing.B) {
	b.Helper()
	b.ReportMetric(float64(SpeedRef().Microseconds())/1000, "ref-ms")
}
