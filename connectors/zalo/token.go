package zalo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
)

// TokenLockName is the store-wide named lock held while an OA's token is
// refreshed, by the daemon's sinks on every replica and by `zalo token set`.
func TokenLockName(oaID string) string { return "zalo/token/" + oaID }

// saveTimeout bounds the store write of a new pair. It runs on a context that the
// delivery's deadline does not cancel: once Zalo has answered a refresh, the old
// refresh token is spent, and the new pair must reach the store.
const saveTimeout = 30 * time.Second

// lockPoll is how often a process waits for another replica's refresh to finish.
const lockPoll = 100 * time.Millisecond

// RefusedError is the transient error every notice gets while Zalo refuses the
// stored refresh token: nothing is dead-lettered for a credentials problem, the
// notices wait (RetryAfter) until an operator stores a new token. AlertReason makes
// the dispatcher raise an alert for the sink.
type RefusedError struct {
	OAID   string
	Reason string
	Wait   time.Duration
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the Zalo sink is stopped, no usable refresh token for OA %s (%s): "+
		"re-authorise the app in the Zalo developer console, then run "+
		"`egov-bridge zalo token set -c CONFIG` with the new refresh token; waiting notices are then sent", e.OAID, e.Reason)
}

// RetryAfter makes the dispatcher wait before trying the notice again.
func (e *RefusedError) RetryAfter() time.Duration { return e.Wait }

// Paused tells the dispatcher that the whole sink waits for an operator: the
// notices are not old because of it, and must not be given up for their age.
func (e *RefusedError) Paused() bool { return true }

// AlertReason names the dispatcher's alert.
func (e *RefusedError) AlertReason() string { return "zalo_token_refused" }

// TokenStore is the part of the state store the token manager (and `zalo token
// set`) needs.
type TokenStore interface {
	ZaloToken(ctx context.Context, oaID string) (store.ZaloToken, error)
	SaveZaloToken(ctx context.Context, t store.ZaloToken, fence *store.Fence) (int64, error)
	RefuseZaloToken(ctx context.Context, oaID string, generation int64, reason string, at time.Time) error
	TryLock(ctx context.Context, name string) (store.Lock, bool, error)
}

// tokens keeps an OA's access token usable: it refreshes ahead of expiry and when
// Zalo rejects a token, one refresh at a time in this process (mu) and across
// processes (the store's named lock), and commits each new pair to the store
// before anything uses it.
type tokens struct {
	st     TokenStore
	api    *api
	oaID   string
	seed   string // the config's first refresh token
	clock  pipeline.Clock
	ahead  time.Duration
	wait   time.Duration // RetryAfter while refused
	log    *slog.Logger
	onLost func() // called when a refresh was spent but its pair could not be stored

	mu        sync.Mutex // one refresher per process
	cur       atomic.Pointer[store.ZaloToken]
	refreshes atomic.Int64
	refused   atomic.Bool
	loggedGen atomic.Int64 // 1 + the refused generation already logged, so it is logged once
}

// access returns a usable access token.
func (m *tokens) access(ctx context.Context) (store.ZaloToken, error) {
	if t := m.cur.Load(); m.usable(t, "") {
		return *t, nil
	}
	return m.renew(ctx, "")
}

// rejected returns a token other than bad, which Zalo just rejected: the one
// another caller already obtained, or a fresh one.
func (m *tokens) rejected(ctx context.Context, bad string) (store.ZaloToken, error) {
	return m.renew(ctx, bad)
}

func (m *tokens) usable(t *store.ZaloToken, bad string) bool {
	return t != nil && t.Refused == "" && t.AccessToken != "" && t.AccessToken != bad &&
		m.clock().Add(m.ahead).Before(t.ExpiresAt)
}

func (m *tokens) renew(ctx context.Context, bad string) (store.ZaloToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.cur.Load(); m.usable(t, bad) {
		return *t, nil // another goroutine refreshed while this one waited
	}
	for {
		t, err := m.load(ctx)
		if err != nil {
			return store.ZaloToken{}, err
		}
		if m.usable(&t, bad) { // another replica refreshed
			m.cur.Store(&t)
			return t, nil
		}
		lock, ok, err := m.st.TryLock(ctx, TokenLockName(m.oaID))
		if err != nil {
			return store.ZaloToken{}, fmt.Errorf("zalo token: %w", err)
		}
		if !ok { // another replica is refreshing: its pair will be in the store
			if err := sleep(ctx, lockPoll); err != nil {
				return store.ZaloToken{}, fmt.Errorf("zalo token: waiting for another replica's refresh: %w", err)
			}
			continue
		}
		t, err = m.refreshLocked(ctx, lock, bad)
		lock.Unlock()
		return t, err
	}
}

// load reads the stored pair, seeding the store from the config the first time,
// and fails with a *RefusedError while the stored refresh token is refused.
func (m *tokens) load(ctx context.Context) (store.ZaloToken, error) {
	t, err := m.st.ZaloToken(ctx, m.oaID)
	if errors.Is(err, store.ErrNotFound) {
		if err := m.seedStore(ctx); err != nil {
			return store.ZaloToken{}, err
		}
		t, err = m.st.ZaloToken(ctx, m.oaID)
	}
	if err != nil {
		return store.ZaloToken{}, fmt.Errorf("zalo token: %w", err)
	}
	if t.Refused != "" {
		m.cur.Store(nil)
		return store.ZaloToken{}, m.refusal(t)
	}
	m.refused.Store(false)
	return t, nil
}

// seedStore stores the config's refresh token for an OA the store knows nothing
// of, under the lock, so a replica started with an old config cannot overwrite a
// pair that was rotated since.
func (m *tokens) seedStore(ctx context.Context) error {
	if m.seed == "" {
		return m.refusal(store.ZaloToken{Refused: "no refresh token stored and none in the config"})
	}
	for {
		lock, ok, err := m.st.TryLock(ctx, TokenLockName(m.oaID))
		if err != nil {
			return fmt.Errorf("zalo token: %w", err)
		}
		if !ok {
			if err := sleep(ctx, lockPoll); err != nil {
				return err
			}
			continue
		}
		defer lock.Unlock()
		if _, err := m.st.ZaloToken(ctx, m.oaID); !errors.Is(err, store.ErrNotFound) {
			return err // seeded by another process meanwhile (nil), or a store error
		}
		f := lock.Fence()
		_, err = m.st.SaveZaloToken(ctx, store.ZaloToken{OAID: m.oaID, RefreshToken: m.seed, RefreshedAt: m.clock()}, &f)
		return err
	}
}

// refreshLocked refreshes under the named lock: it reads the store again (a
// replica may have refreshed just before the lock was free), trades the stored
// refresh token for a new pair, and stores the pair, fenced, before returning it.
func (m *tokens) refreshLocked(ctx context.Context, lock store.Lock, bad string) (store.ZaloToken, error) {
	t, err := m.load(ctx)
	if err != nil {
		return store.ZaloToken{}, err
	}
	if m.usable(&t, bad) {
		m.cur.Store(&t)
		return t, nil
	}
	// From the request on, the old refresh token may be spent: neither the call nor
	// the save may be cut short by the delivery's deadline.
	octx := context.WithoutCancel(ctx)
	pair, err := m.api.refresh(octx, t.RefreshToken)
	var oe *OAuthError
	if errors.As(err, &oe) {
		now := m.clock()
		if rerr := m.st.RefuseZaloToken(octx, m.oaID, t.Generation, oe.Error(), now); rerr != nil {
			return store.ZaloToken{}, fmt.Errorf("zalo token: %w (and recording the refusal failed: %v)", oe, rerr)
		}
		t.Refused, t.RefusedAt = oe.Error(), now
		m.cur.Store(nil)
		return store.ZaloToken{}, m.refusal(t)
	}
	if err != nil {
		return store.ZaloToken{}, fmt.Errorf("zalo token refresh: %w", err)
	}
	now := m.clock()
	next := store.ZaloToken{OAID: m.oaID, AccessToken: pair.Access, RefreshToken: pair.Refresh,
		ExpiresAt: now.Add(pair.ExpiresIn), RefreshedAt: now}
	sctx, cancel := context.WithTimeout(octx, saveTimeout)
	defer cancel()
	f := lock.Fence()
	gen, err := m.st.SaveZaloToken(sctx, next, &f)
	if err != nil {
		// The pair is not stored, so it is not used; the spent refresh token will be
		// refused next time and an operator must set a new one.
		if m.onLost != nil {
			m.onLost()
		}
		m.log.Error("a Zalo token refresh succeeded but the new pair could not be stored; it is not used",
			"oa", m.oaID, "err", err)
		return store.ZaloToken{}, fmt.Errorf("zalo token: store the new pair: %w", err)
	}
	next.Generation = gen
	m.refreshes.Add(1)
	m.cur.Store(&next)
	m.log.Info("Zalo access token refreshed", "oa", m.oaID, "generation", gen, "expires_at", next.ExpiresAt)
	return next, nil
}

// refusal is the error for a refused refresh token; the first time a generation
// is seen refused it is logged, once, with what the operator must do.
func (m *tokens) refusal(t store.ZaloToken) error {
	err := &RefusedError{OAID: m.oaID, Reason: t.Refused, Wait: m.wait}
	m.refused.Store(true)
	if mark := t.Generation + 1; m.loggedGen.Swap(mark) != mark { // +1: generation 0 is "nothing stored"
		m.log.Error(err.Error(), "oa", m.oaID)
	}
	return err
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SetToken stores a refresh token obtained by re-authorising the app (`egov-bridge
// zalo token set`), with no access token, so the next notice refreshes with it. It
// takes the refresher's lock first, waiting for a refresh in flight, so that it
// never lands between another process's refresh and its save.
func SetToken(ctx context.Context, st TokenStore, oaID, refreshToken string, now time.Time) error {
	if refreshToken == "" {
		return errors.New("the refresh token is empty")
	}
	for {
		lock, ok, err := st.TryLock(ctx, TokenLockName(oaID))
		if err != nil {
			return err
		}
		if !ok {
			if err := sleep(ctx, lockPoll); err != nil {
				return fmt.Errorf("waiting for a token refresh in flight: %w", err)
			}
			continue
		}
		defer lock.Unlock()
		f := lock.Fence()
		_, err = st.SaveZaloToken(ctx, store.ZaloToken{OAID: oaID, RefreshToken: refreshToken, RefreshedAt: now}, &f)
		return err
	}
}
