package actors

// ActivityLoad is what the node's activity slots are doing.
type ActivityLoad struct {
	// Running counts the activities holding a slot, Slots the bound
	// (Config.MaxConcurrentActivities).
	Running, Slots int
	// Waiting counts the instances waiting for a slot to free.
	Waiting int
}

// Activities reports the load on the node's activity slots.
func (n *Node) Activities() ActivityLoad {
	slots := n.cfg.MaxConcurrentActivities
	running, waiting := n.gate.load(slots)
	return ActivityLoad{Running: running, Slots: slots, Waiting: waiting}
}
