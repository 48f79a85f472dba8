// Murmur2Vectors prints the murmur2 hash and the partition of 6 that
// Kafka's Java client gives each key; the vectors of
// kafka/partition_internal_test.go were made with it (Kafka 4.1.1):
//
//	java -cp ".cache/kafka/libs/*" kafka/testdata/Murmur2Vectors.java
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Utils;
import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class Murmur2Vectors {
    public static void main(String[] args) {
        String[] keys = {"", "a", "ab", "abc", "abcd", "abcde", "user-1", "user-2", "order-42",
            "0190b6d2-7c4e-7a9b-8f3e-2d1c5b6a7e90", "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "héllo wörld", "日本語キー", "kafka", "dddkit", "x", "zzzzzzzzzzzzzzzzzzzz", "o-0", "o-1", "o-2", "o-3"};
        for (String k : keys) {
            byte[] b = k.getBytes(StandardCharsets.UTF_8);
            int h = Utils.murmur2(b);
            int p = Utils.toPositive(h) % 6;
            int bp = BuiltInPartitioner.partitionForKey(b, 6);
            if (p != bp) throw new IllegalStateException("mismatch " + k);
            System.out.printf("{%s, %d, %d},%n", quote(k), h, p);
        }
    }
    static String quote(String s) {
        return "\"" + s + "\"";
    }
}
