package eventbus

import (
	"slices"
)

// Topics returns the topics the registry's event types are published on:
// the [TopicFunc] of the aggregate type of every event type registered
// with [AggregateType], sorted, each once. Event types without an
// aggregate type have no topic of the registry's and are left out.
//
// With a [Router]'s [Router.Topics] (which adds the dead-letter topics),
// it is the list of topics a service provisions at start-up (for Kafka,
// kafka.Client.Provision).
func (r *Registry) Topics() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var topics []string
	for _, et := range r.byName {
		if et.aggregateType != "" {
			topics = append(topics, r.topic(et.aggregateType))
		}
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}

// Topics returns the topics the router's handlers use: the topics they
// consume and the dead-letter topics they publish to
// ([RouterConfig.DeadLetterTopic], or a handler's [DeadLetterTopic]),
// sorted, each once. Ask once every handler is registered.
func (r *Router) Topics() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	topics := make([]string, 0, 2*len(r.consumers))
	for _, c := range r.consumers {
		topics = append(topics, c.topic, c.deadLetter)
	}
	slices.Sort(topics)
	return slices.Compact(topics)
}
