package engine

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

func TestDeliveryDefaultsRetryByTimeAndHoldDeadLetters(t *testing.T) {
	const base = `store: { driver: sqlite, path: state.db }
sources:
  - { name: motcua, type: memory, table: HoSo, mapping: m.yaml }
sinks:
  - { name: plain, type: recorder }
  - { name: unlimited, type: recorder, delivery: { max_attempts: 0 } }
  - { name: flowing, type: recorder, delivery: { on_dead: skip } }
routes:
  - { to: [plain, unlimited, flowing] }
`
	tests := []struct {
		name, top    string
		sink         string
		wantAttempts int
		wantOnDead   store.OnDead
		wantMaxAge   time.Duration
		wantErr      string
	}{
		{name: "built-in defaults", sink: "plain", wantAttempts: 0, wantOnDead: store.OnDeadHold, wantMaxAge: 72 * time.Hour},
		{name: "top-level limit inherited", top: "delivery: { max_attempts: 7 }\n", sink: "plain", wantAttempts: 7, wantOnDead: store.OnDeadHold, wantMaxAge: 72 * time.Hour},
		{name: "a sink's explicit 0 means no limit", top: "delivery: { max_attempts: 7 }\n", sink: "unlimited", wantAttempts: 0, wantOnDead: store.OnDeadHold, wantMaxAge: 72 * time.Hour},
		{name: "a sink's on_dead", top: "delivery: { on_dead: hold }\n", sink: "flowing", wantAttempts: 0, wantOnDead: store.OnDeadSkip, wantMaxAge: 72 * time.Hour},
		{name: "unknown on_dead", top: "delivery: { on_dead: drop }\n", wantErr: `delivery.on_dead: unknown value "drop" (want hold or skip)`},
		{name: "negative max_attempts", top: "delivery: { max_attempts: -1 }\n", wantErr: "delivery.max_attempts: must not be negative (0 means no limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"m.yaml": testMapping, "c.yaml": tt.top + base})
			cfg, err := LoadFile(filepath.Join(dir, "c.yaml"))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.DeliveryFor(tt.sink)
			if got.MaxAttempts != tt.wantAttempts || got.OnDead != tt.wantOnDead || got.MaxAge.D() != tt.wantMaxAge {
				t.Fatalf("%s: max_attempts %d on_dead %q max_age %s; want %d %q %s",
					tt.sink, got.MaxAttempts, got.OnDead, got.MaxAge.D(), tt.wantAttempts, tt.wantOnDead, tt.wantMaxAge)
			}
		})
	}
}
