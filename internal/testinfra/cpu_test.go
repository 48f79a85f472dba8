package testinfra

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadCPUCountsTheProcessWork(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ReadCPU reads /proc")
	}
	before := ReadCPU()
	// Work until the process's clock has moved by a few ticks.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for ReadCPU().Since(before).Self < 50*time.Millisecond && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
	}
	used := ReadCPU().Since(before)
	require.GreaterOrEqual(t, used.Self, 50*time.Millisecond, "this process's CPU time (x=%d)", x)
	require.GreaterOrEqual(t, used.Database, time.Duration(0))
	require.GreaterOrEqual(t, used.Broker, time.Duration(0))
	require.Equal(t, CPU{Self: 2 * used.Self, Database: 2 * used.Database, Broker: 2 * used.Broker}, used.Add(used))
}

func TestSpeedRefMeasuresTheWork(t *testing.T) {
	d := SpeedRef()
	require.Greater(t, d, time.Duration(0))
	require.Less(t, d, 10*time.Second)
}
