package announce_test

import (
	"slices"
	"testing"

	"github.com/egov-bridge/egov-bridge/pipeline/announce"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// The area segment reaches the followers whose linked phone belongs to a record
// located in the commune, by its current or former name, besides the commune's
// subscribers, each once; an agency still reaches only its own communes.
func TestAreaSegmentReachesResidentsByLinkedPhone(t *testing.T) {
	f := newFixture(t)
	c := f.st.(citizens)
	link := func(user, phone string) {
		t.Helper()
		if _, err := c.UpsertZaloFollowers(f.ctx, []store.ZaloFollower{{OAID: "oa-1", UserID: user, Phone: phone, Followed: true, UpdatedAt: f.now}}); err != nil {
			t.Fatal(err)
		}
	}
	link("u1", "84912345601")
	link("u2", "84912345602")
	link("u3", "84912345603")
	f.follow("xa can giuoc", "u1", "u4") // u1 is also a resident: counted once
	version := map[string]int64{}
	dossier := func(key, phone, address string) store.SnapshotEntry {
		version[key]++
		return store.SnapshotEntry{Entity: "dossier", Key: key, Hash: key + address, Version: version[key],
			Fields: map[string]any{"code": key, "phone": phone, "address": address}}
	}
	commit := func(es ...store.SnapshotEntry) {
		t.Helper()
		if err := f.st.Commit(f.ctx, store.Batch{Source: "motcua", At: f.now, Snapshot: es}); err != nil {
			t.Fatal(err)
		}
	}
	// Synced before the residence was configured: found through the index's fill.
	// HS2 names the commune by a former name without diacritics.
	commit(dossier("HS2", "0912345602", "so 5 ap 2, thi tran can giuoc"))
	svc, err := announce.New(announce.Options{Regulation: f.svc.Regulation(), Store: f.st.(announce.Store), Agencies: agencies,
		Channels: map[string]announce.Channel{"zalo": f.oa}, Clock: f.clock, Zone: hcm,
		Residence: []announce.Residence{{Entity: "dossier", Phone: "phone", Places: []string{"address"}}}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	// Synced after: indexed by the commit. HS1 names the commune by its current
	// name; HS3 is in another district's commune; HS4 is u1 again.
	commit(dossier("HS1", "0912 345 601", "Ấp 3, Xã Cần Giuộc, tỉnh Tây Ninh"),
		dossier("HS3", "0912345603", "Ấp Tân Thanh, Xã Phước Vĩnh Tây"),
		dossier("HS4", "0912345601", "Xã Phước Lâm cũ"))

	area := func(names ...string) announce.Segment {
		return announce.Segment{Kind: announce.SegmentArea, Places: names}
	}
	p, err := f.svc.PreviewDraft(f.ctx, f.draft("HUYEN-A", area("Xã Cần Giuộc"), at("10:00")))
	if err != nil {
		t.Fatal(err)
	}
	if p.Recipients != 3 || p.Messages() != 3 || p.OptedOut != 0 {
		t.Fatalf("preview: %d recipients, %d messages, %d opted out; want the two residents and the subscriber (3)", p.Recipients, p.Messages(), p.OptedOut)
	}

	// A district cannot reach another district's residents through the area.
	_, err = f.svc.PreviewDraft(f.ctx, f.draft("HUYEN-B", area("Xã Cần Giuộc"), at("10:00")))
	refused(t, err, "not one of HUYEN-B's communes")
	_, err = f.svc.PreviewDraft(f.ctx, f.draft("HUYEN-A", area("xa long hau"), at("10:00")))
	refused(t, err, "not one of HUYEN-A's communes")
	if p, err = f.svc.PreviewDraft(f.ctx, f.draft("HUYEN-B", area("Xã Phước Vĩnh Tây"), at("10:00"))); err != nil || p.Recipients != 1 {
		t.Fatalf("HUYEN-B's own commune: %+v, %v", p, err)
	}

	// A resident who sent HUY TIN is counted as opted out and sent nothing.
	if err := c.StopZaloFollower(f.ctx, "oa-1", "u2", true, f.now); err != nil {
		t.Fatal(err)
	}
	d := f.draft("HUYEN-A", area("Xã Cần Giuộc"), at("10:00"))
	if p, err = f.svc.PreviewDraft(f.ctx, d); err != nil || p.Recipients != 3 || p.OptedOut != 1 || p.Messages() != 2 {
		t.Fatalf("after u2's HUY TIN: %+v, %v", p, err)
	}
	id := f.approved("dung", "em", "em", d)
	f.set(at("10:00"))
	f.tick()
	if got := f.oa.users(); !slices.Equal(got, []string{"u1", "u4"}) {
		t.Fatalf("sent to %v, want u1 and u4", got)
	}
	if a := f.get(id); a.State != announce.StateSent || a.Sent != 2 || a.OptedOut != 1 {
		t.Fatalf("state %s sent %d opted out %d", a.State, a.Sent, a.OptedOut)
	}
}
