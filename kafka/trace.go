package kafka

// MessagingSystem returns "kafka": the messaging.system of the spans the
// outbox relay and the consumers start for this client's messages.
func (c *Client) MessagingSystem() string { return "kafka" }

// MessagingSystem returns "kafka" (see [Client.MessagingSystem]).
func (sharedPublisher) MessagingSystem() string { return "kafka" }
