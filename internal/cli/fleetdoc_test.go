package cli

import (
	"reflect"
	"testing"

	"github.com/shoal-dev/shoal/internal/agent"
	"github.com/shoal-dev/shoal/internal/fleet"
)

// TestFleetDocMatchesTheServer checks that every field the client reads from
// GET /shoal/v1/fleet is one the server writes, under the same JSON name and
// of the same kind.
func TestFleetDocMatchesTheServer(t *testing.T) {
	for _, pair := range []struct{ client, server reflect.Type }{
		{reflect.TypeFor[fleetInstance](), reflect.TypeFor[fleet.InstanceView]()},
		{reflect.TypeFor[fleetEnv](), reflect.TypeFor[agent.EnvStatus]()},
	} {
		for i := range pair.client.NumField() {
			cf := pair.client.Field(i)
			sf, ok := pair.server.FieldByName(cf.Name)
			if !ok {
				t.Errorf("%s.%s: %s has no such field", pair.client, cf.Name, pair.server)
				continue
			}
			if cf.Tag.Get("json") != sf.Tag.Get("json") {
				t.Errorf("%s.%s: json %q, the server's %q", pair.client, cf.Name, cf.Tag.Get("json"), sf.Tag.Get("json"))
			}
			if cf.Type.Kind() != sf.Type.Kind() {
				t.Errorf("%s.%s: %s, the server's %s", pair.client, cf.Name, cf.Type.Kind(), sf.Type.Kind())
			}
		}
	}
}
