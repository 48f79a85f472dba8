package kafka

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
)

// javaMurmur2 is org.apache.kafka.common.utils.Utils.murmur2 (Kafka's
// Java client) written out line by line, in Java's signed 32-bit
// arithmetic: int multiplication wraps, >>> is a shift of the unsigned
// bits. It is independent of sarama's implementation.
func javaMurmur2(data []byte) int32 {
	length := int32(len(data))      //nolint:gosec // test keys are short
	const seed = int32(-1756908916) // 0x9747b28c
	const m = int32(0x5bd1e995)
	const r = 24
	h := seed ^ length
	length4 := length / 4
	for i := int32(0); i < length4; i++ {
		i4 := i * 4
		k := int32(data[i4+0]) + int32(data[i4+1])<<8 + int32(data[i4+2])<<16 + int32(data[i4+3])<<24
		k *= m
		k ^= int32(uint32(k) >> r) //nolint:gosec // Java's >>>
		k *= m
		h *= m
		h ^= k
	}
	switch length % 4 {
	case 3:
		h ^= int32(data[(length&^3)+2]) << 16
		fallthrough
	case 2:
		h ^= int32(data[(length&^3)+1]) << 8
		fallthrough
	case 1:
		h ^= int32(data[length&^3])
		h *= m
	}
	h ^= int32(uint32(h) >> 13) //nolint:gosec // Java's >>>
	h *= m
	h ^= int32(uint32(h) >> 15) //nolint:gosec // Java's >>>
	return h
}

// javaPartition is the partition Java's default partitioner gives a
// record with key: Utils.toPositive(Utils.murmur2(key)) % numPartitions,
// where toPositive(x) = x & 0x7fffffff (not Math.abs).
func javaPartition(key []byte, numPartitions int32) int32 {
	return (javaMurmur2(key) & 0x7fffffff) % numPartitions
}

// murmur2Vectors were computed by Kafka's Java client 4.1.1 (the jars of
// scripts/testenv.sh) with kafka/testdata/Murmur2Vectors.java:
// Utils.murmur2 of each key's UTF-8 bytes, and the partition of 6 that
// Utils.toPositive(hash) % 6 and BuiltInPartitioner.partitionForKey give.
// Half of the hashes are negative, which is where a partitioner that
// takes the absolute value instead of toPositive differs.
var murmur2Vectors = []struct {
	key       string
	hash      int32
	partition int32
}{
	{"", 275646681, 3},
	{"a", -1563381124, 4},
	{"ab", 316155434, 2},
	{"abc", 479470107, 3},
	{"abcd", -1323649548, 2},
	{"abcde", 461995741, 1},
	{"user-1", 1404122828, 2},
	{"user-2", -324981792, 2},
	{"order-42", 501153024, 0},
	{"0190b6d2-7c4e-7a9b-8f3e-2d1c5b6a7e90", -1154122650, 2},
	{"3f2504e0-4f89-11d3-9a0c-0305e82c3301", 149263511, 5},
	{"héllo wörld", 439213890, 0},
	{"日本語キー", 1445825182, 4},
	{"kafka", -798503068, 4},
	{"dddkit", -1617198131, 3},
	{"x", 2121525046, 4},
	{"zzzzzzzzzzzzzzzzzzzz", 1520731246, 4},
	{"o-0", -213406769, 3},
	{"o-1", 747680922, 0},
	{"o-2", -1755635321, 3},
	{"o-3", 1866667372, 4},
}

func TestJavaMurmur2MatchesJava(t *testing.T) {
	t.Parallel()
	for _, v := range murmur2Vectors {
		require.Equal(t, v.hash, javaMurmur2([]byte(v.key)), "murmur2(%q)", v.key)
		require.Equal(t, v.partition, javaPartition([]byte(v.key), 6), "partition of %q", v.key)
	}
}

// randomKeys returns n random keys of 1 to 40 characters, some of them
// multi-byte UTF-8.
func randomKeys(rng *rand.Rand, n int) []string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/éü日本"
	runes := []rune(alphabet)
	keys := make([]string, n)
	for i := range keys {
		b := make([]rune, 1+rng.IntN(40))
		for j := range b {
			b[j] = runes[rng.IntN(len(runes))]
		}
		keys[i] = string(b)
	}
	return keys
}

// The partitioner of the client's sarama configuration puts every key
// where Java's default partitioner does.
func TestDefaultPartitionerIsJavas(t *testing.T) {
	t.Parallel()
	c, err := (&Config{Brokers: []string{"a:1"}}).withDefaults()
	require.NoError(t, err)
	sc, err := c.saramaConfig()
	require.NoError(t, err)
	require.False(t, sc.Metadata.AllowAutoTopicCreation, "metadata requests never create topics")
	p := sc.Producer.Partitioner("orders")
	require.True(t, p.RequiresConsistency(), "a key always goes to the same partition")

	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test data
	keys := randomKeys(rng, 1000)
	for _, v := range murmur2Vectors {
		keys = append(keys, v.key)
	}
	negative := 0
	for _, k := range keys {
		got, err := p.Partition(&sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder(k)}, 6)
		require.NoError(t, err)
		require.Equal(t, javaPartition([]byte(k), 6), got, "key %q", k)
		if javaMurmur2([]byte(k)) < 0 {
			negative++
		}
	}
	require.Greater(t, negative, 300, "the keys exercise negative hashes")

	// Configure may choose another partitioner (an opt-out).
	c.Configure = func(s *sarama.Config) { s.Producer.Partitioner = sarama.NewHashPartitioner }
	sc, err = c.saramaConfig()
	require.NoError(t, err)
	p = sc.Producer.Partitioner("orders")
	differ := 0
	for _, k := range keys[:100] {
		got, err := p.Partition(&sarama.ProducerMessage{Topic: "orders", Key: sarama.StringEncoder(k)}, 6)
		require.NoError(t, err)
		if got != javaPartition([]byte(k), 6) {
			differ++
		}
	}
	require.Positive(t, differ, "Configure's partitioner is used")
}

// On a real broker, records published through Client.Publisher land on
// the partition Java's formula gives their key.
func TestPublishedKeysLandOnJavaPartitions(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 6)
	client, err := NewClient(&Config{Brokers: brokers, ClientID: "dddkit-partition-test"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })

	// A message without an aggregate ID is keyed by its UUID.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)) //nolint:gosec // test data
	keys := randomKeys(rng, 1000)
	want := make(map[string]int, len(keys))
	msgs := make([]*message.Message, len(keys))
	for i, k := range keys {
		msgs[i] = message.NewMessage(k, []byte(`{}`))
		want[k]++
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, client.Publisher().(interface {
		PublishContext(context.Context, string, ...*message.Message) error
	}).PublishContext(ctx, topic, msgs...))

	records := kafkatest.ReadAll(t, brokers, topic)
	require.Len(t, records, len(keys))
	got := make(map[string]int, len(keys))
	used := map[int32]bool{}
	for _, r := range records {
		got[r.Key]++
		used[r.Partition] = true
		require.Equal(t, javaPartition([]byte(r.Key), 6), r.Partition, "record key %q", r.Key)
	}
	require.Equal(t, want, got, "every key arrives once, as published")
	require.Len(t, used, 6, "the keys spread over every partition")
}
