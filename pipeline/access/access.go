// Package access decides who may read the steering page and the API: API tokens
// from the config (kept only as SHA-256 hashes), their roles and agency scopes, the
// session cookie the login form sets, and the CSRF check on cookie-borne requests.
package access

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// Role is what a token may do. Each role may do everything the ones before it may.
type Role string

const (
	// Viewer reads figures, events, status and the feedback inbox, citizen data masked.
	Viewer Role = "viewer"
	// Operator also replays and dismisses dead letters, resets cursors and answers
	// feedback; every such action is written to the audit log with the role.
	Operator Role = "operator"
	// Admin also sees citizens' names and phones unmasked and reads the audit log.
	Admin Role = "admin"
)

var rank = map[Role]int{Viewer: 1, Operator: 2, Admin: 3}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return rank[r] > 0 }

// Allows reports whether a holder of r may do what needs the role need.
func (r Role) Allows(need Role) bool { return rank[r] > 0 && rank[r] >= rank[need] }

// Exposure says who may read an operations endpoint (/healthz, /readyz, /metrics).
type Exposure string

const (
	Public  Exposure = "public" // anyone who reaches the port (the default: probes and scrapers)
	Token   Exposure = "token"  // a valid token of any role, as a bearer header or session cookie
	Off     Exposure = "off"    // not served
	Default Exposure = ""       // the endpoint's default, public
)

// TokenConfig is one API token in the config. The token itself is given as
// token (literally, as ${ENV}, or as token_file) or only by its hash, sha256, so
// the secret need not be on the server at all; either way only the hash is kept.
type TokenConfig struct {
	Name  string `yaml:"name" required:"true" doc:"Who holds the token; written to the audit log as api:<name>." example:"trung-tam-dieu-hanh"`
	Token string `yaml:"token" secret:"true" doc:"The token itself (at least 16 characters): better as token_file or ${ENV}; or give only sha256."`
	// SHA256 is the hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
	SHA256 string `yaml:"sha256" doc:"The token's SHA-256 in hex (printf %s TOKEN | sha256sum), so the token itself is not on the server."`
	Role   Role   `yaml:"role" required:"true" enum:"viewer,operator,admin" doc:"viewer reads (citizen data masked); operator also replays, dismisses, resets cursors and answers feedback; admin also sees citizen data and the audit log."`
	// Agencies limits the token to these agency codes and the agencies under them
	// (the config's agencies: parents) in figures, events, feedback and operator
	// actions; empty means every agency.
	Agencies []string `yaml:"agencies" doc:"Limit the token to these agency codes and the agencies under them (a district's code covers its communes); empty: every agency." example:"[HUYEN-CANGIUOC]"`
}

// MinTokenLength keeps guessable tokens out of the config.
const MinTokenLength = 16

// Check reports every mistake in a token list through errorf (field path relative
// to the list, e.g. "[1].sha256"); the role is checked by its enum tag.
func Check(tokens []TokenConfig, errorf func(field, format string, args ...any)) {
	names := map[string]bool{}
	hashes := map[string]string{}
	for i, t := range tokens {
		p := fmt.Sprintf("[%d]", i)
		if t.Name != "" && names[t.Name] {
			errorf(p+".name", "another token is already named %q", t.Name)
		}
		names[t.Name] = true
		switch {
		case t.Token != "" && t.SHA256 != "":
			errorf(p+".sha256", "give the token or its sha256, not both")
		case t.Token == "" && t.SHA256 == "":
			errorf(p, "no token: give token, token_file (or ${ENV}) or sha256")
		case t.Token != "" && len(t.Token) < MinTokenLength:
			errorf(p+".token", "too short: a token has at least %d characters", MinTokenLength)
		case t.SHA256 != "":
			if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
				errorf(p+".sha256", "want 64 hexadecimal digits (printf %%s TOKEN | sha256sum)")
			}
		}
		h := t.hash()
		if h != "" {
			if other, dup := hashes[h]; dup {
				errorf(p, "the same token as %q: each token names one holder", other)
			}
			hashes[h] = t.Name
		}
		for j, a := range t.Agencies {
			if strings.TrimSpace(a) == "" {
				errorf(fmt.Sprintf("%s.agencies[%d]", p, j), "empty agency code")
			}
		}
	}
}

func (t TokenConfig) hash() string {
	if t.Token != "" {
		return Hash(t.Token)
	}
	return strings.ToLower(t.SHA256)
}

// Hash is the hex SHA-256 of a token, as kept in memory and in configs.
func Hash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Principal is the holder of a valid token.
type Principal struct {
	Name     string
	Role     Role
	Agencies []string // nil: every agency
}

// Scoped reports whether the principal sees only some agencies.
func (p Principal) Scoped() bool { return len(p.Agencies) > 0 }

// Unmasked reports whether the principal sees citizens' names and phones.
func (p Principal) Unmasked() bool { return p.Role.Allows(Admin) }

// Actor is how the principal appears in the audit log.
func (p Principal) Actor() string { return "api:" + p.Name }

// Keyring holds the hashes of the configured tokens. The tokens themselves are
// dropped once hashed.
type Keyring struct {
	byHash map[string]Principal
}

// NewKeyring hashes the tokens of a checked config.
func NewKeyring(tokens []TokenConfig) *Keyring {
	k := &Keyring{byHash: map[string]Principal{}}
	for _, t := range tokens {
		var agencies []string
		if len(t.Agencies) > 0 {
			agencies = slices.Clone(t.Agencies)
		}
		k.byHash[t.hash()] = Principal{Name: t.Name, Role: t.Role, Agencies: agencies}
	}
	return k
}

// Len is how many tokens the keyring holds.
func (k *Keyring) Len() int { return len(k.byHash) }

// Lookup returns the holder of a token. The token is hashed before the look-up,
// so the map is searched by a value an attacker cannot steer byte by byte.
func (k *Keyring) Lookup(token string) (Principal, bool) {
	if k == nil || token == "" {
		return Principal{}, false
	}
	p, ok := k.byHash[Hash(token)]
	return p, ok
}

type principalKey struct{}

// With returns a context carrying the principal.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// From returns the principal a guarded handler runs for.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
