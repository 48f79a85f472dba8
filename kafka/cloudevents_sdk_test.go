// This file is the reading half of the CloudEvents Go SDK's Kafka (sarama)
// protocol binding, github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2
// message.go at commit d6f40309, copied because that module is not on the
// Go module proxy (github.com/cloudevents/sdk-go/v2, which it builds on,
// is, and is what the tests use to turn the message into an event). Only
// the package clause, the name of the type and of its constructors, and
// the dropped ReadStructured support (dddkit writes binary mode only)
// differ from the original. The copy is a test dependency, not part of
// dddkit.
//
// Copyright 2021 The CloudEvents Authors
// SPDX-License-Identifier: Apache-2.0

package kafka_test

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
)

const (
	cePrefix            = "ce_"
	ceContentTypeHeader = "content-type"
)

var ceSpecs = spec.WithPrefix(cePrefix)

// ceMessage holds a Kafka Message (kafka_sarama.Message).
type ceMessage struct {
	Value       []byte
	Headers     map[string][]byte
	ContentType string
	format      format.Format
	version     spec.Version
}

var (
	_ binding.Message               = (*ceMessage)(nil)
	_ binding.MessageMetadataReader = (*ceMessage)(nil)
)

// ceMessageFromConsumerMessage is kafka_sarama.NewMessageFromConsumerMessage.
func ceMessageFromConsumerMessage(cm *sarama.ConsumerMessage) *ceMessage {
	var contentType string
	headers := make(map[string][]byte, len(cm.Headers)+3)
	for _, r := range cm.Headers {
		k := strings.ToLower(string(r.Key))
		if k == ceContentTypeHeader {
			contentType = string(r.Value)
		}
		headers[k] = r.Value
	}
	headers[cePrefix+"kafkaoffset"] = []byte(strconv.FormatInt(cm.Offset, 10))
	headers[cePrefix+"kafkapartition"] = []byte(strconv.FormatInt(int64(cm.Partition), 10))
	headers[cePrefix+"kafkatopic"] = []byte(cm.Topic)
	return newCEMessage(cm.Value, contentType, headers)
}

// newCEMessage is kafka_sarama.NewMessage.
func newCEMessage(value []byte, contentType string, headers map[string][]byte) *ceMessage {
	if ft := format.Lookup(contentType); ft != nil {
		return &ceMessage{
			Value:       value,
			ContentType: contentType,
			Headers:     headers,
			format:      ft,
		}
	} else if v := ceSpecs.Version(string(headers[ceSpecs.PrefixedSpecVersionName()])); v != nil {
		return &ceMessage{
			Value:       value,
			ContentType: contentType,
			Headers:     headers,
			version:     v,
		}
	}

	return &ceMessage{
		Value:       value,
		ContentType: contentType,
		Headers:     headers,
	}
}

func (m *ceMessage) ReadEncoding() binding.Encoding {
	if m.version != nil {
		return binding.EncodingBinary
	}
	if m.format != nil {
		return binding.EncodingStructured
	}
	return binding.EncodingUnknown
}

func (m *ceMessage) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (m *ceMessage) ReadBinary(ctx context.Context, encoder binding.BinaryWriter) (err error) {
	if m.version == nil {
		return binding.ErrNotBinary
	}

	for k, v := range m.Headers {
		if strings.HasPrefix(k, cePrefix) {
			attr := m.version.Attribute(k)
			if attr != nil {
				err = encoder.SetAttribute(attr, string(v))
			} else {
				err = encoder.SetExtension(strings.TrimPrefix(k, cePrefix), string(v))
			}
		} else if k == ceContentTypeHeader {
			err = encoder.SetAttribute(m.version.AttributeFromKind(spec.DataContentType), string(v))
		}
		if err != nil {
			return
		}
	}

	if m.Value != nil {
		err = encoder.SetData(bytes.NewBuffer(m.Value))
	}

	return
}

func (m *ceMessage) GetAttribute(k spec.Kind) (spec.Attribute, interface{}) {
	attr := m.version.AttributeFromKind(k)
	if attr != nil {
		return attr, string(m.Headers[attr.PrefixedName()])
	}
	return nil, nil
}

func (m *ceMessage) GetExtension(name string) interface{} {
	return string(m.Headers[cePrefix+name])
}

func (m *ceMessage) Finish(error) error {
	return nil
}
