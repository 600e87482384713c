package main

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rows touched while the first sync runs move past the reader's bound; when the next
// run reads them, they are snapshot records: a citizen is never told about a
// dossier that existed before the daemon was installed. Dossiers that arrive after
// the sync are news.
func TestRowsTouchedDuringTheFirstSyncNeverNotify(t *testing.T) {
	e := newE2E(t, 100, "0s")
	write(t, e.dir+"/dossier.yaml", e2eMapping+`rules:
  - name: dossier.received
    when: 'type == "created"'
`)
	// lag: the reader stays a second behind the database clock, so touches made in
	// the sync's last second land beyond its bound.
	write(t, e.config, strings.Replace(readFile(t, e.config), "lag: 0s", "lag: 1s", 1))
	const existing = 1500
	e.exec(`INSERT INTO hoso SELECT 'HS-' || g, 'Lý Thanh Tâm', 2, now() - interval '1 hour' + g * interval '1 ms' FROM generate_series(1, $1) g`, existing)

	// A clerk keeps working while the first sync runs.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e.exec(`UPDATE hoso SET ngay_cap_nhat = now(), trang_thai = 4 WHERE ma_ho_so = $1`, fmt.Sprintf("HS-%d", 1+(i*7919)%existing))
		}
	}()
	st := e.runOnce()["motcua"]
	close(stop)
	wg.Wait()
	if !st.Snapshot || st.Rows == 0 {
		t.Fatalf("first sync %+v", st)
	}
	var touched int
	e.db.QueryRow(`SELECT count(*) FROM hoso WHERE trang_thai = 4`).Scan(&touched)

	e.exec(`INSERT INTO hoso VALUES ('HS-NEW-1', 'Đỗ Thị Mai', 2, now()), ('HS-NEW-2', 'Phan Văn Lực', 2, now())`)
	waitFor(t, 10*time.Second, "every touched row to leave the lag window", func() bool {
		var behind bool
		e.db.QueryRow(`SELECT max(ngay_cap_nhat) < now() - interval '1 second' FROM hoso`).Scan(&behind)
		return behind
	})
	e.runOnce()

	var notified []string
	for _, ev := range e.storedEvents() {
		if ev.Rule == "dossier.received" {
			notified = append(notified, ev.Key)
		}
	}
	if fmt.Sprint(notified) != "[HS-NEW-1 HS-NEW-2]" {
		t.Fatalf("%d rows were touched during the first sync; citizens notified for %v, want only the two new dossiers", touched, notified)
	}
}

// One poison row (a NULL key) is quarantined with its reason; the rows around it
// sync, and the source does not stall on it.
func TestPoisonRowIsQuarantinedAndTheSourceReadsOn(t *testing.T) {
	e := newE2E(t, 2, "0s")
	e.exec(`ALTER TABLE hoso DROP CONSTRAINT hoso_pkey`)
	e.exec(`ALTER TABLE hoso ALTER COLUMN ma_ho_so DROP NOT NULL`)
	e.exec(`INSERT INTO hoso VALUES ('HS-1', 'An', 2, now() - interval '5 minute'), (NULL, 'Bình', 2, now() - interval '4 minute'),
		('HS-3', 'Cường', 2, now() - interval '3 minute'), ('HS-4', 'Dũng', 2, now() - interval '2 minute')`)
	st := e.runOnce()["motcua"]
	if st.Events != 3 || st.Quarantined != 1 {
		t.Fatalf("run %+v; want 3 events and the poison row quarantined", st)
	}
	var reason string
	e.db.QueryRow(`SELECT reason FROM quarantine`).Scan(&reason)
	if !strings.Contains(reason, "ma_ho_so") {
		t.Fatalf("quarantine reason %q does not name the key column", reason)
	}
	e.exec(`INSERT INTO hoso VALUES ('HS-5', 'Em', 2, now() - interval '1 minute')`)
	if st := e.runOnce()["motcua"]; st.Events != 1 {
		t.Fatalf("next run %+v; want HS-5", st)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
