package actors

//go:generate protoc --go_out=. --go_opt=paths=source_relative wire.proto

import (
	"fmt"

	"github.com/durable-go/durable/history"
)

// toWire returns the protobuf form of a message for the actor of a
// partition on another node, or false for a message that never leaves its
// node (wakes, timers, the actors' own bookkeeping).
func toWire(msg routed) (*PartitionMessage, bool) {
	w := &PartitionMessage{Target: msg.instanceID()}
	switch m := msg.(type) {
	case *startInstance:
		if m.reply != nil {
			return nil, false // a client's start travels as a seam.Request
		}
		w.Msg = &PartitionMessage_StartChild{StartChild: &StartChild{
			Name: m.req.Name, Input: m.req.Input,
			ParentInstanceId: m.req.ParentInstanceID, ParentExecutionId: m.req.ParentExecutionID, ParentTaskId: m.req.ParentTaskID,
			TraceParent: m.req.TraceParent,
		}}
	case *subOrchestrationDone:
		w.Msg = &PartitionMessage_ChildDone{ChildDone: &ChildDone{ExecutionId: m.executionID, Event: history.Marshal(m.event)}}
	case *delivery:
		if m.reply != nil {
			return nil, false // a client's signal travels as a seam.Request
		}
		w.Msg = &PartitionMessage_Delivery{Delivery: &OutboxDelivery{From: m.from, Seq: m.seq, Event: history.Marshal(m.msg)}}
	case *delivered:
		w.Msg = &PartitionMessage_Delivered{Delivered: &OutboxAck{Seq: m.seq}}
	default:
		return nil, false
	}
	return w, true
}

// fromWire is the message a PartitionMessage from another node stands for.
func fromWire(w *PartitionMessage) (routed, error) {
	target := w.GetTarget()
	if target == "" {
		return nil, fmt.Errorf("partition message without a target")
	}
	switch m := w.GetMsg().(type) {
	case *PartitionMessage_StartChild:
		s := m.StartChild
		return &startInstance{req: startRequest{InstanceID: target, Name: s.GetName(), Input: nilIfEmpty(s.GetInput()),
			ParentInstanceID: s.GetParentInstanceId(), ParentExecutionID: s.GetParentExecutionId(), ParentTaskID: s.GetParentTaskId(),
			TraceParent: s.GetTraceParent()}}, nil
	case *PartitionMessage_ChildDone:
		ev, err := history.Unmarshal(m.ChildDone.GetEvent())
		if err != nil {
			return nil, fmt.Errorf("child outcome for %s: %w", target, err)
		}
		return &subOrchestrationDone{id: target, executionID: m.ChildDone.GetExecutionId(), event: ev}, nil
	case *PartitionMessage_Delivery:
		ev, err := history.Unmarshal(m.Delivery.GetEvent())
		if err != nil {
			return nil, fmt.Errorf("delivery to %s: %w", target, err)
		}
		return &delivery{target: target, from: m.Delivery.GetFrom(), seq: m.Delivery.GetSeq(), msg: ev}, nil
	case *PartitionMessage_Delivered:
		return &delivered{id: target, seq: m.Delivered.GetSeq()}, nil
	}
	return nil, fmt.Errorf("partition message to %s without a body", target)
}

// Deliver hands a message that came from another node (or was meant for
// one, and found its partition here) to the actor of its target in
// partition p.
func (n *Node) Deliver(p int, w *PartitionMessage) error {
	msg, err := fromWire(w)
	if err != nil {
		return err
	}
	return n.sendTo(p, msg)
}
