package eventbus

import "github.com/ThreeDotsLabs/watermill/message"

// Transport is the broker a [Router] consumes from: Kafka (the Client of
// package [github.com/dddkit/dddkit/kafka]), in-memory ([MemoryTransport]),
// or anything else that speaks watermill.
type Transport interface {
	// Subscriber returns a new subscriber that consumes as the consumer
	// group named group: within one group each message of a topic is
	// handled once (by one of the group's members, which share the
	// partitions); every group gets every message. A Router asks for one
	// subscriber per handler name and closes it when it stops.
	Subscriber(group string) (message.Subscriber, error)
	// Publisher returns the publisher for dead letters; the transport
	// owns it and closes it in its own Close, a Router never does.
	Publisher() message.Publisher
}
