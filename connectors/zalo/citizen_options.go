package zalo

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/egov-bridge/egov-bridge/pipeline"
	"github.com/egov-bridge/egov-bridge/pipeline/config"
)

// WebhookPath is where the daemon's HTTP server receives Zalo's webhook events.
const WebhookPath = "/webhooks/zalo"

// Webhook defaults.
const (
	DefaultWebhookWindow  = 5 * time.Minute
	DefaultWebhookMaxBody = 64 << 10
)

// Webhook are the receiver's limits. The receiver is on when the sink has an
// oa_secret_key and a citizens block.
type Webhook struct {
	// Window refuses events whose timestamp is further than this from the
	// daemon's clock, either way (a replayed or forged old event).
	Window config.Duration `yaml:"window"`
	// MaxBody refuses larger bodies with 413, in bytes.
	MaxBody int `yaml:"max_body"`
}

// Citizens configures what citizens can ask the OA. Every keyword is matched
// ignoring case and diacritics; every text has a Vietnamese default.
type Citizens struct {
	// Places is the crosswalk CSV of the province's communes and wards (current and
	// former names; see package places), relative to the config file.
	Places string `yaml:"places"`
	// Lookups answer questions from the records egov-bridge has synced.
	Lookups []Lookup `yaml:"lookups"`
	// Topics can be subscribed to per commune or ward: DK <topic> <place>.
	Topics []Topic `yaml:"topics"`
	// Keywords of the fixed commands.
	Subscribe   []string `yaml:"subscribe"`   // DK <topic> <place>
	Unsubscribe []string `yaml:"unsubscribe"` // HUY <topic> <place>
	Stop        []string `yaml:"stop"`        // HUY TIN: no proactive message of any kind
	Resume      []string `yaml:"resume"`      // DK TIN: proactive messages again
	Help        []string `yaml:"help"`        // HD
	Feedback    Feedback `yaml:"feedback"`
	Rating      Rating   `yaml:"rating"`
	Texts       Texts    `yaml:"texts"`
	// RequestInfo is the request-user-info message that asks a citizen to share
	// their phone number (Zalo shows it as a form).
	RequestInfo RequestInfo `yaml:"request_info"`
}

// Lookup is one question citizens can ask, answered from a synced entity.
type Lookup struct {
	Keywords []string `yaml:"keywords" required:"true"` // [HS]
	Usage    string   `yaml:"usage"`                    // a line of the help: "HS <mã hồ sơ>: tình trạng hồ sơ"
	Entity   string   `yaml:"entity" required:"true"`
	// Field is the record field the citizen types (compared folded); or Area names
	// the fields whose text names communes or wards, and the citizen types one.
	Field string   `yaml:"field"`
	Area  []string `yaml:"area"`
	// Owner, when set, is the record's phone field: the record is shown only to a
	// citizen whose linked phone equals it.
	Owner string `yaml:"owner"`
	// Upcoming keeps records whose end is not past and whose start is within Days.
	Upcoming *Upcoming `yaml:"upcoming"`
	// Unless drops records whose field of this name is true (a cancelled outage).
	Unless string `yaml:"unless"`
	// Reply renders one record (Go template over its fields; date, time, datetime).
	Reply    string `yaml:"reply" required:"true"`
	Header   string `yaml:"header"`    // before the records; .query is what was asked, .place the place
	NotFound string `yaml:"not_found"` // .query
	Max      int    `yaml:"max"`       // records in one answer (default 5)
}

// Upcoming bounds a look-up to what is ahead.
type Upcoming struct {
	Start string `yaml:"start" required:"true"`
	End   string `yaml:"end" required:"true"`
	Days  int    `yaml:"days"` // default 7
}

// Topic is something citizens subscribe to per place.
type Topic struct {
	Name  string   `yaml:"name" required:"true"`  // the word after DK/HUY: CUPDIEN
	Label string   `yaml:"label"`                 // in replies: "lịch cắt điện"
	Rules []string `yaml:"rules" required:"true"` // rule events fanned out to subscribers (globs)
	// Area names the event's fields whose text names places; default the message's
	// audience.
	Area []string `yaml:"area"`
}

// Feedback is GOPY <nội dung>.
type Feedback struct {
	Keywords []string `yaml:"keywords"` // default [GOPY]
	Agency   string   `yaml:"agency"`   // the agency whose dashboards receive it
	Reply    string   `yaml:"reply"`    // .ref
}

// Rating is DG <1-5>: satisfaction with a dossier whose result was returned.
type Rating struct {
	Keywords    []string `yaml:"keywords"` // default [DG]
	Entity      string   `yaml:"entity"`   // default dossier
	Owner       string   `yaml:"owner"`    // phone field; default phone
	Code        string   `yaml:"code"`     // field the citizen may name; default code
	Status      string   `yaml:"status"`   // default status
	Returned    []string `yaml:"returned"` // status values meaning "result returned"; default [10]
	Finished    string   `yaml:"finished"` // time field ordering the dossiers; default finished_at
	AgencyField string   `yaml:"agency_field"`
	Reply       string   `yaml:"reply"` // .code, .score
}

// RequestInfo is the request-user-info template's card.
type RequestInfo struct {
	Title    string `yaml:"title"`
	Subtitle string `yaml:"subtitle"`
	ImageURL string `yaml:"image_url"`
}

// Texts are the fixed replies.
type Texts struct {
	Intro          string `yaml:"intro"`           // first line of HD
	Unknown        string `yaml:"unknown"`         // before the help, for anything not understood
	NeedPhone      string `yaml:"need_phone"`      // with the request-info form: a look-up needs the linked phone
	NotYours       string `yaml:"not_yours"`       // .query: nothing of that code for this phone (same as none at all)
	UnknownPlace   string `yaml:"unknown_place"`   // .query
	Subscribed     string `yaml:"subscribed"`      // .topic .place
	Unsubscribed   string `yaml:"unsubscribed"`    // .topic .place
	NotSubscribed  string `yaml:"not_subscribed"`  // .topic .place
	Stopped        string `yaml:"stopped"`         //
	Resumed        string `yaml:"resumed"`         //
	EmptyFeedback  string `yaml:"empty_feedback"`  //
	BadRating      string `yaml:"bad_rating"`      //
	NothingToRate  string `yaml:"nothing_to_rate"` //
	FeedbackAnswer string `yaml:"feedback_answer"` // .ref .answer: an agency's answer to GOPY
}

func defaultTexts() Texts {
	return Texts{
		Intro:          "Tổng đài Chính quyền điện tử xin hướng dẫn các cú pháp tra cứu:",
		Unknown:        "Xin lỗi, hệ thống chưa hiểu yêu cầu của Ông/Bà.",
		NeedPhone:      "Để bảo vệ thông tin cá nhân, hồ sơ chỉ được trả lời cho số điện thoại đứng tên hồ sơ. Vui lòng chia sẻ số điện thoại của Ông/Bà qua biểu mẫu sau rồi nhắn lại yêu cầu.",
		NotYours:       "Không tìm thấy {{.query}} gắn với số điện thoại Ông/Bà đã chia sẻ. Nếu hồ sơ đứng tên số điện thoại khác, vui lòng chia sẻ đúng số đó qua biểu mẫu sau.",
		UnknownPlace:   "Không tìm thấy xã/phường \"{{.query}}\". Vui lòng nhắn tên xã/phường hiện nay hoặc tên trước khi sắp xếp, ví dụ: CUPDIEN My Yen.",
		Subscribed:     "Đã đăng ký nhận thông báo {{.topic}} tại {{.place}}. Nhắn HUY {{.keyword}} {{.query}} để hủy.",
		Unsubscribed:   "Đã hủy nhận thông báo {{.topic}} tại {{.place}}.",
		NotSubscribed:  "Ông/Bà chưa đăng ký nhận thông báo {{.topic}} tại {{.place}}.",
		Stopped:        "Ông/Bà sẽ không nhận thêm thông báo chủ động nào từ Tổng đài. Nhắn DK TIN để nhận lại.",
		Resumed:        "Ông/Bà sẽ nhận lại các thông báo đã đăng ký.",
		EmptyFeedback:  "Vui lòng nhắn GOPY kèm nội dung góp ý, ví dụ: GOPY Đèn đường ấp 3 bị hỏng.",
		BadRating:      "Vui lòng nhắn DG kèm điểm từ 1 (rất không hài lòng) đến 5 (rất hài lòng), ví dụ: DG 5.",
		NothingToRate:  "Không tìm thấy hồ sơ đã trả kết quả gắn với số điện thoại của Ông/Bà để đánh giá.",
		FeedbackAnswer: "Trả lời góp ý {{.ref}}: {{.answer}}",
	}
}

var defaultRequestInfo = RequestInfo{Title: "Chia sẻ số điện thoại", Subtitle: "Cho phép Tổng đài Chính quyền điện tử dùng số điện thoại của Ông/Bà để tra cứu hồ sơ và gửi thông báo."}

// withDefaults fills what the province left out.
func (c Citizens) withDefaults() Citizens {
	def := func(v *[]string, d ...string) {
		if len(*v) == 0 {
			*v = d
		}
	}
	def(&c.Subscribe, "DK")
	def(&c.Unsubscribe, "HUY")
	def(&c.Stop, "HUY TIN")
	def(&c.Resume, "DK TIN")
	def(&c.Help, "HD")
	def(&c.Feedback.Keywords, "GOPY")
	def(&c.Rating.Keywords, "DG")
	def(&c.Rating.Returned, "10")
	str := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	str(&c.Feedback.Reply, "Cảm ơn Ông/Bà đã góp ý. Mã góp ý: {{.ref}}. Cơ quan chức năng sẽ xem xét và trả lời qua Zalo.")
	str(&c.Rating.Entity, "dossier")
	str(&c.Rating.Owner, "phone")
	str(&c.Rating.Code, "code")
	str(&c.Rating.Status, "status")
	str(&c.Rating.Finished, "finished_at")
	str(&c.Rating.Reply, "Cảm ơn Ông/Bà đã đánh giá {{.score}}/5 cho hồ sơ {{.code}}.")
	d := defaultTexts()
	for _, f := range []struct {
		v *string
		d string
	}{
		{&c.Texts.Intro, d.Intro}, {&c.Texts.Unknown, d.Unknown}, {&c.Texts.NeedPhone, d.NeedPhone},
		{&c.Texts.NotYours, d.NotYours}, {&c.Texts.UnknownPlace, d.UnknownPlace}, {&c.Texts.Subscribed, d.Subscribed},
		{&c.Texts.Unsubscribed, d.Unsubscribed}, {&c.Texts.NotSubscribed, d.NotSubscribed}, {&c.Texts.Stopped, d.Stopped},
		{&c.Texts.Resumed, d.Resumed}, {&c.Texts.EmptyFeedback, d.EmptyFeedback}, {&c.Texts.BadRating, d.BadRating},
		{&c.Texts.NothingToRate, d.NothingToRate}, {&c.Texts.FeedbackAnswer, d.FeedbackAnswer},
	} {
		str(f.v, f.d)
	}
	str(&c.RequestInfo.Title, defaultRequestInfo.Title)
	str(&c.RequestInfo.Subtitle, defaultRequestInfo.Subtitle)
	for i := range c.Lookups {
		if c.Lookups[i].Max <= 0 {
			c.Lookups[i].Max = 5
		}
		if u := c.Lookups[i].Upcoming; u != nil && u.Days <= 0 {
			u.Days = 7
		}
	}
	return c
}

// validate reports the citizens block's mistakes under p.
func (c *Citizens) validate(report pipeline.Reporter, p string, secret string) {
	if strings.TrimSpace(secret) == "" {
		report("oa_secret_key", "is required with citizens: the webhook checks every event's signature with it")
	}
	for i, l := range c.Lookups {
		lp := fmt.Sprintf("%s.lookups[%d]", p, i)
		switch {
		case l.Field == "" && len(l.Area) == 0:
			report(lp, "name the field the citizen types (field) or the fields naming places (area)")
		case l.Field != "" && len(l.Area) > 0:
			report(lp, "give field or area, not both")
		}
		if len(l.Area) > 0 && c.Places == "" {
			report(lp+".area", "needs %s.places, the crosswalk of communes and wards", p)
		}
		if len(l.Keywords) == 0 {
			report(lp+".keywords", "name at least one keyword")
		}
		checkTemplates(report, lp, map[string]string{"reply": l.Reply, "header": l.Header, "not_found": l.NotFound})
	}
	for i, t := range c.Topics {
		tp := fmt.Sprintf("%s.topics[%d]", p, i)
		if len(t.Rules) == 0 {
			report(tp+".rules", "name at least one rule whose events go to the topic's subscribers")
		}
		for j, r := range t.Rules {
			if _, err := path.Match(r, ""); err != nil {
				report(fmt.Sprintf("%s.rules[%d]", tp, j), "bad pattern %q", r)
			}
		}
		if c.Places == "" {
			report(tp, "needs %s.places, the crosswalk of communes and wards", p)
		}
	}
	checkTemplates(report, p+".feedback", map[string]string{"reply": c.Feedback.Reply})
	checkTemplates(report, p+".rating", map[string]string{"reply": c.Rating.Reply})
	checkTemplates(report, p+".texts", map[string]string{"not_yours": c.Texts.NotYours, "unknown_place": c.Texts.UnknownPlace,
		"subscribed": c.Texts.Subscribed, "unsubscribed": c.Texts.Unsubscribed, "not_subscribed": c.Texts.NotSubscribed,
		"feedback_answer": c.Texts.FeedbackAnswer})
}

func checkTemplates(report pipeline.Reporter, p string, ts map[string]string) {
	for name, src := range ts {
		if src == "" {
			continue
		}
		if _, err := parseTemplate(name, src, nil); err != nil {
			report(p+"."+name, "%v", err)
		}
	}
}
