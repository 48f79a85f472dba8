// Package testbroker runs a private single-node Kafka broker that one
// test owns and may stop and restart (see [Start]), for the fault tests;
// the shared broker's helpers are in dddkittest/kafkatest.
package testbroker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
)

// EnvKafkaLibs overrides where the Kafka jars are; scripts/testenv.sh
// sets it when it starts Kafka. Without it they are looked up in the
// cache directory testenv.sh fetches them into:
// $DDDKIT_CACHE_DIR/kafka/libs, by default
// ${XDG_CACHE_HOME:-$HOME/.cache}/dddkit/kafka/libs.
const EnvKafkaLibs = "TEST_KAFKA_LIBS"

// Broker is a private single-node Kafka (KRaft) that one test owns and may
// stop and restart without disturbing the shared test broker.
type Broker struct {
	Addr string
	dir  string
	libs string
	cmd  *exec.Cmd
	done chan struct{}
	t    testing.TB
}

// Start starts a private broker or skips the test when java or the
// Kafka jars are not available. It is stopped when the test ends.
func Start(t testing.TB) *Broker {
	t.Helper()
	kafkatest.Brokers(t) // same opt-in as every Kafka test
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("skipping: needs java for a private Kafka broker")
	}
	libs := os.Getenv(EnvKafkaLibs)
	if libs == "" {
		libs = findLibs()
	}
	if libs == "" {
		t.Skipf("skipping: Kafka jars not found (run make test once, or set %s)", EnvKafkaLibs)
	}
	dir := t.TempDir()
	port, cport := freePort(t), freePort(t)
	for cport == port {
		cport = freePort(t)
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=%[3]s/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.flush.interval.messages=9223372036854775807
`, port, cport, dir)
	log4j := fmt.Sprintf(`status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = %s/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%%d] %%p %%m (%%c)%%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.apache.name = org.apache.kafka
logger.apache.level = warn
`, dir)
	must(t, os.WriteFile(filepath.Join(dir, "server.properties"), []byte(props), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "log4j2.properties"), []byte(log4j), 0o600))

	clusterID := newClusterID()
	format := exec.CommandContext(context.Background(), java, append(javaOpts(dir), "-cp", libs+"/*", "kafka.tools.StorageTool", "format", "--standalone",
		"--cluster-id="+clusterID, "-c", filepath.Join(dir, "server.properties"))...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("kafkatest: format storage: %v\n%s", err, out)
	}
	b := &Broker{Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, libs: libs, t: t}
	b.start(java)
	t.Cleanup(b.stop)
	b.waitReady()
	return b
}

// newClusterID returns a random KRaft cluster ID: 16 bytes in unpadded
// base64url. One that starts with '-' is drawn again (as Kafka's own
// Uuid.randomUuid does): the storage tool's argument parser would take it
// for an option and fail the format, one run in 64.
func newClusterID() string {
	for {
		var id [16]byte
		_, _ = rand.Read(id[:])
		if s := base64.RawURLEncoding.EncodeToString(id[:]); s[0] != '-' {
			return s
		}
	}
}

func javaOpts(dir string) []string {
	return []string{"-Xms256m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(dir, "log4j2.properties")}
}

func (b *Broker) start(java string) {
	b.t.Helper()
	stdout, err := os.OpenFile(filepath.Join(b.dir, "stdout.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	must(b.t, err)
	cmd := exec.CommandContext(context.Background(), java, append(javaOpts(b.dir), "-cp", b.libs+"/*", "kafka.Kafka", filepath.Join(b.dir, "server.properties"))...)
	cmd.Stdout, cmd.Stderr = stdout, stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(b.t, cmd.Start())
	b.cmd = cmd
	b.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = stdout.Close()
		close(b.done)
	}()
}

// waitReady waits until the broker answers metadata requests.
func (b *Broker) waitReady() {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	cfg := kafkatest.Config(b.t)
	cfg.Net.DialTimeout = time.Second
	cfg.Metadata.Retry.Max = 0
	for {
		select {
		case <-b.done:
			log, _ := os.ReadFile(filepath.Join(b.dir, "server.log"))
			b.t.Fatalf("kafkatest: broker exited during start-up:\n%s", tail(log))
		default:
		}
		if c, err := sarama.NewClient([]string{b.Addr}, cfg); err == nil {
			brokers := c.Brokers()
			_ = c.Close()
			if len(brokers) > 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(b.dir, "server.log"))
			b.t.Fatalf("kafkatest: broker not ready within 90s:\n%s", tail(log))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Restart stops the broker (SIGTERM, a controlled shutdown), keeps it
// down for at least pause, starts it again on the same data and waits
// until it is ready. It returns how long the broker was down.
func (b *Broker) Restart(pause time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	b.stop()
	time.Sleep(pause)
	java, _ := exec.LookPath("java")
	b.start(java)
	b.waitReady()
	return time.Since(start)
}

func (b *Broker) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// CreateTopic creates a topic on the private broker and waits until it
// can be written.
func (b *Broker) CreateTopic(name string, partitions int32) {
	b.t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{b.Addr}, kafkatest.Config(b.t))
	must(b.t, err)
	defer admin.Close()
	must(b.t, admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	must(b.t, kafkatest.WaitForTopic(ctx, []string{b.Addr}, name, kafkatest.Config(b.t)))
}

func findLibs() string {
	cache := os.Getenv("DDDKIT_CACHE_DIR")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		cache = filepath.Join(dir, "dddkit")
	}
	libs := filepath.Join(cache, "kafka", "libs")
	if m, _ := filepath.Glob(filepath.Join(libs, "kafka_*.jar")); len(m) > 0 {
		return libs
	}
	return ""
}

// freePort returns a port that is free on 127.0.0.1, chosen below the
// kernel's ephemeral range: a port from that range (what binding port 0
// gives) can be taken by any outgoing connection of the concurrently
// running tests between this check and the broker's bind, or while the
// broker is down for a restart.
func freePort(t testing.TB) int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	for range 100 {
		port := 10000 + mrand.IntN(low-10000)
		l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_ = l.Close()
			return port
		}
	}
	t.Fatalf("kafkatest: no free port below %d on 127.0.0.1", low)
	return 0
}

func tail(b []byte) string {
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("\n"))))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
}
