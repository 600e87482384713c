package zalo

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/places"
	"github.com/egov-bridge/egov-bridge/pipeline/store"
	"github.com/egov-bridge/egov-bridge/pipeline/transform"
)

// CitizenState is the part of the state store the citizens' side of the sink
// needs (store.Open's store has it): the webhook's inbox, followers, subscriptions,
// feedback, ratings, look-up indexes and the outbox.
type CitizenState interface {
	AddZaloInbound(ctx context.Context, e store.ZaloInbound) (bool, error)
	WaitingZaloInbound(ctx context.Context, oaID string, limit int) ([]store.ZaloInbound, error)
	FinishZaloInbound(ctx context.Context, id int64, at time.Time, errMsg string, done bool) error
	ZaloFollower(ctx context.Context, oaID, userID string) (store.ZaloFollower, error)
	SetZaloFollowing(ctx context.Context, oaID, userID string, following bool, at time.Time) error
	TouchZaloFollower(ctx context.Context, oaID, userID string, at time.Time) error
	LinkZaloPhone(ctx context.Context, oaID, userID, phone string, consentAt time.Time) error
	StopZaloFollower(ctx context.Context, oaID, userID string, stop bool, at time.Time) error
	Subscribe(ctx context.Context, sub store.ZaloSubscription) (bool, error)
	Unsubscribe(ctx context.Context, oaID, userID, topic, place string) (bool, error)
	Subscribers(ctx context.Context, oaID, topic string, places []string) ([]store.ZaloSubscription, error)
	AddFeedback(ctx context.Context, f store.Feedback, year int, source string, emit store.EmitFunc) (store.Feedback, bool, error)
	AnswerFeedback(ctx context.Context, ref, answer, by string, at time.Time, source string, emit store.EmitFunc) (store.Feedback, error)
	Rate(ctx context.Context, r store.Rating) error
	IndexLookup(entity, name string, fn store.IndexFunc)
	FillLookupIndex(ctx context.Context, entity, name string, at time.Time) (bool, error)
	LookupRecords(ctx context.Context, entity, name, value string, limit int) ([]store.LookupHit, error)
	Enqueue(ctx context.Context, source string, evs []store.OutboxEvent, at time.Time) error
	TryLock(ctx context.Context, name string) (store.Lock, bool, error)
}

// Entities of the events the sink raises for itself.
const (
	replyEntity  = "zalo_reply"  // an answer to a citizen's message
	noticeEntity = "zalo_notice" // one subscriber's copy of a topic's notice
	// FeedbackEntity is the entity of GOPY events, routed like any event (to the
	// agency's dashboard sinks).
	FeedbackEntity = "feedback"
	replyRule      = "zalo.reply"
)

// cmdKind says what a command does.
type cmdKind int

const (
	cmdLookup cmdKind = iota
	cmdSubscribe
	cmdUnsubscribe
	cmdStop
	cmdResume
	cmdHelp
	cmdFeedback
	cmdRating
)

type command struct {
	words  []string // folded keyword words
	kind   cmdKind
	lookup *lookup
}

type lookup struct {
	Lookup
	index                   string // the look-up index's name in the store
	reply, header, notFound *template.Template
	keyword                 string // the first keyword, for metrics
	start, end              string // Upcoming's fields
}

type topic struct {
	Topic
	key string // folded name
}

// citizens is the sink's compiled citizens block.
type citizens struct {
	cfg     Citizens
	st      CitizenState
	places  *places.Table
	cmds    []command
	lookups []*lookup
	topics  []*topic
	texts   map[string]*template.Template
	rating  struct{ index string }

	mu     sync.Mutex
	filled map[string]bool // look-up indexes known filled from the snapshot

	wake   chan struct{}
	start  sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

// fold is how keywords and typed values are compared.
func foldWords(s string) []string { return strings.Fields(transform.Fold(s)) }

// newCitizens compiles the citizens block and asks the store to index the look-up
// fields.
func newCitizens(env pipeline.Env, c Citizens, zone *time.Location) (*citizens, error) {
	st, ok := env.State.(CitizenState)
	if !ok {
		return nil, fmt.Errorf("zalo sink %q: the state store cannot keep citizens' data (webhook inbox, subscriptions, feedback)", env.Name)
	}
	c = c.withDefaults()
	ct := &citizens{cfg: c, st: st, texts: map[string]*template.Template{}, filled: map[string]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if c.Places != "" {
		p := c.Places
		if env.Resolve != nil {
			p = env.Resolve(p)
		}
		t, err := places.Load(p)
		if err != nil {
			return nil, fmt.Errorf("zalo sink %q: citizens.places: %w", env.Name, err)
		}
		ct.places = t
	}
	must := func(name, src string) (*template.Template, error) {
		if src == "" {
			return nil, nil
		}
		t, err := parseTemplate(name, src, zone)
		if err != nil {
			return nil, fmt.Errorf("zalo sink %q: citizens: %s: %w", env.Name, name, err)
		}
		return t, nil
	}
	for name, src := range map[string]string{"not_yours": c.Texts.NotYours, "unknown_place": c.Texts.UnknownPlace,
		"subscribed": c.Texts.Subscribed, "unsubscribed": c.Texts.Unsubscribed, "not_subscribed": c.Texts.NotSubscribed,
		"feedback_answer": c.Texts.FeedbackAnswer, "feedback": c.Feedback.Reply, "rating": c.Rating.Reply} {
		t, err := must(name, src)
		if err != nil {
			return nil, err
		}
		ct.texts[name] = t
	}
	add := func(kw []string, kind cmdKind, l *lookup) {
		for _, k := range kw {
			if w := foldWords(k); len(w) > 0 {
				ct.cmds = append(ct.cmds, command{words: w, kind: kind, lookup: l})
			}
		}
	}
	for i, spec := range c.Lookups {
		l := &lookup{Lookup: spec, keyword: strings.ToUpper(spec.Keywords[0])}
		var err error
		if l.reply, err = must(fmt.Sprintf("lookups[%d].reply", i), spec.Reply); err != nil {
			return nil, err
		}
		if l.header, err = must(fmt.Sprintf("lookups[%d].header", i), spec.Header); err != nil {
			return nil, err
		}
		if l.notFound, err = must(fmt.Sprintf("lookups[%d].not_found", i), spec.NotFound); err != nil {
			return nil, err
		}
		if spec.Field != "" {
			l.index = "field:" + spec.Field
			st.IndexLookup(spec.Entity, l.index, foldedField(spec.Field))
		} else {
			l.index = "area:" + strings.Join(spec.Area, "+")
			st.IndexLookup(spec.Entity, l.index, placesIn(ct.places, spec.Area))
		}
		if spec.Upcoming != nil {
			l.start, l.end = spec.Upcoming.Start, spec.Upcoming.End
		}
		ct.lookups = append(ct.lookups, l)
		add(spec.Keywords, cmdLookup, l)
	}
	for _, t := range c.Topics {
		ct.topics = append(ct.topics, &topic{Topic: t, key: strings.Join(foldWords(t.Name), " ")})
	}
	if c.Rating.Entity != "" {
		ct.rating.index = "phone:" + c.Rating.Owner
		st.IndexLookup(c.Rating.Entity, ct.rating.index, phoneField(c.Rating.Owner))
	}
	add(c.Subscribe, cmdSubscribe, nil)
	add(c.Unsubscribe, cmdUnsubscribe, nil)
	add(c.Stop, cmdStop, nil)
	add(c.Resume, cmdResume, nil)
	add(c.Help, cmdHelp, nil)
	add(c.Feedback.Keywords, cmdFeedback, nil)
	add(c.Rating.Keywords, cmdRating, nil)
	// The longest keyword first: "HUY TIN" before "HUY".
	sort.SliceStable(ct.cmds, func(i, j int) bool { return len(ct.cmds[i].words) > len(ct.cmds[j].words) })
	return ct, nil
}

// foldedField indexes a record by the folded text of one field.
func foldedField(field string) store.IndexFunc {
	return func(f map[string]any) []string {
		v := textOf(f[field])
		if v == "" {
			return nil
		}
		return []string{transform.Fold(v)}
	}
}

// phoneField indexes a record by its phone, as 84xxxxxxxxx.
func phoneField(field string) store.IndexFunc {
	return func(f map[string]any) []string {
		p, err := transform.PhoneVN(textOf(f[field]))
		if err != nil {
			return nil
		}
		return []string{p}
	}
}

// placesIn indexes a record by the communes and wards its area fields name.
func placesIn(t *places.Table, fields []string) store.IndexFunc {
	return func(f map[string]any) []string {
		return places.IDs(t.Find(areaText(f, fields)))
	}
}

func areaText(f map[string]any, fields []string) string {
	parts := make([]string, 0, len(fields))
	for _, name := range fields {
		if v := textOf(f[name]); v != "" {
			parts = append(parts, v)
		}
	}
	// A full stop between fields: a name must not run from one into the next.
	return strings.Join(parts, ". ")
}

func textOf(v any) string {
	if v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// match finds the command a message starts with and the rest of the message, as
// typed (case and diacritics kept).
func (c *citizens) match(text string) (*command, string) {
	typed := strings.Fields(text)
	folded := make([]string, len(typed))
	for i, w := range typed {
		folded[i] = transform.Fold(w)
	}
	for i := range c.cmds {
		cmd := &c.cmds[i]
		if len(cmd.words) <= len(folded) && equalWords(folded[:len(cmd.words)], cmd.words) {
			return cmd, strings.Join(typed[len(cmd.words):], " ")
		}
	}
	return nil, ""
}

func equalWords(a, b []string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

// topicOf finds the topic a typed word names.
func (c *citizens) topicOf(word string) *topic {
	k := strings.Join(foldWords(word), " ")
	for _, t := range c.topics {
		if t.key == k {
			return t
		}
	}
	return nil
}

// topicsFor are the topics whose subscribers hear a rule's events.
func (c *citizens) topicsFor(rule string) []*topic {
	var out []*topic
	for _, t := range c.topics {
		for _, p := range t.Rules {
			if ok, _ := path.Match(p, rule); ok {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// help lists what this province configured.
func (c *citizens) help() string {
	lines := []string{c.cfg.Texts.Intro}
	for _, l := range c.lookups {
		if l.Usage != "" {
			lines = append(lines, "- "+l.Usage)
		}
	}
	sub, unsub := strings.ToUpper(c.cfg.Subscribe[0]), strings.ToUpper(c.cfg.Unsubscribe[0])
	for _, t := range c.topics {
		label := t.Label
		if label == "" {
			label = strings.ToLower(t.Name)
		}
		name := strings.ToUpper(t.Name)
		lines = append(lines, fmt.Sprintf("- %s %s <xã/phường>: đăng ký nhận thông báo %s; %s %s <xã/phường>: hủy", sub, name, label, unsub, name))
	}
	lines = append(lines,
		fmt.Sprintf("- %s <nội dung>: gửi góp ý, phản ánh", strings.ToUpper(c.cfg.Feedback.Keywords[0])),
		fmt.Sprintf("- %s <1-5>: đánh giá mức độ hài lòng với hồ sơ vừa nhận kết quả", strings.ToUpper(c.cfg.Rating.Keywords[0])),
		fmt.Sprintf("- %s: không nhận thông báo chủ động nữa; %s: nhận lại", strings.ToUpper(c.cfg.Stop[0]), strings.ToUpper(c.cfg.Resume[0])),
		fmt.Sprintf("- %s: xem hướng dẫn này", strings.ToUpper(c.cfg.Help[0])))
	return strings.Join(lines, "\n")
}

// text renders one of the fixed texts.
func (c *citizens) text(name string, data map[string]any) string {
	return render(c.texts[name], data)
}
