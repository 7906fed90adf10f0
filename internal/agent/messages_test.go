package agent

import "testing"

// TestReadHeartbeat: a heartbeat counts only on its own agent's subject,
// the one subject the bus lets that agent publish on.
func TestReadHeartbeat(t *testing.T) {
	body := []byte(`{"id":"i-1","state":"running","seq":3}`)
	if hb, ok := ReadHeartbeat(HeartbeatSubject("i-1"), body); !ok || hb.ID != "i-1" || hb.Seq != 3 {
		t.Errorf("on its own subject: %+v, %v", hb, ok)
	}
	for _, tt := range []struct {
		name, subject string
		body          []byte
	}{
		{"another agent's subject", HeartbeatSubject("classic-h1"), body},
		{"not JSON", HeartbeatSubject("i-1"), []byte("{")},
		{"no id", HeartbeatPrefix, []byte(`{"state":"running"}`)},
	} {
		if hb, ok := ReadHeartbeat(tt.subject, tt.body); ok {
			t.Errorf("%s: read as %+v", tt.name, hb)
		}
	}
}
