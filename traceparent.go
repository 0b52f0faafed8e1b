package durable

// WithTraceParent makes the instance's spans (see Options.Observer and
// package tracing) children of the span that traceparent, a W3C Trace
// Context header value ("00-<32 hex trace id>-<16 hex span id>-<2 hex
// flags>"), names. The value is kept in the instance's history, so the
// trace goes on after a restart of the node, and sub-orchestrations join
// it. As the W3C recommendation asks of a receiver, a value that is not a
// valid traceparent is ignored.
func WithTraceParent(traceparent string) StartOption {
	if !ValidTraceParent(traceparent) {
		traceparent = ""
	}
	return func(o *startOptions) { o.traceParent = traceparent }
}

// ValidTraceParent reports whether s is a valid W3C traceparent value of
// version 00 (or a later version, whose first four fields have the same
// form): lower-case hex, a trace id and a parent id that are not all
// zeros.
func ValidTraceParent(s string) bool {
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || (len(s) > 55 && (s[:2] == "00" || s[55] != '-')) {
		return false
	}
	version, trace, parent, flags := s[0:2], s[3:35], s[36:52], s[53:55]
	for _, part := range []string{version, trace, parent, flags} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return version != "ff" && !allZeros(trace) && !allZeros(parent)
}

func allZeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
