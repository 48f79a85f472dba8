package testinfra

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Fault tests run part of a service in a child process that they can
// SIGKILL: the test binary itself, re-executed without running any test,
// with an environment variable that the package's TestMain recognises
// (RunChild) to do the child's work instead.

// RunChild is for TestMain: when the variable env is set in this
// process, it runs fn with its value and exits (status 1, the error on
// stderr, when fn fails); otherwise it returns false and TestMain goes
// on with the tests.
func RunChild(env string, fn func(value string) error) bool {
	v := os.Getenv(env)
	if v == "" {
		return false
	}
	if err := fn(v); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", env, err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// Child is one run of a child process started by [StartChild].
type Child struct {
	cmd  *exec.Cmd
	done chan error
}

// StartChild re-executes the test binary with env ("NAME=value") added
// to this process's environment, its output appended to logPath. The
// child is killed when the test ends, and by the kernel when this
// process dies first.
func StartChild(t testing.TB, logPath string, env ...string) *Child {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$") // killed when the test ends
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	c := &Child{cmd: cmd, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		_ = logFile.Close()
	}()
	t.Cleanup(func() { _ = c.Stop(syscall.SIGKILL) })
	return c
}

// Stop sends sig to the child and waits for it to end; it returns how it
// ended (an error for a kill or a non-zero exit), or an error when it did
// not end within a minute (it is then killed). Stopping a child that
// ended already returns how it ended.
func (c *Child) Stop(sig syscall.Signal) error {
	_ = c.cmd.Process.Signal(sig)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		return errors.New("testinfra: the child did not stop within a minute")
	}
}
