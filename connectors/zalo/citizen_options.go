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
	Window  config.Duration `yaml:"window" doc:"Events whose timestamp is further than this from the daemon's clock, either way, are refused with 401 (a replayed or forged old event)."`
	MaxBody int             `yaml:"max_body" min:"1024" doc:"Larger bodies are refused with 413, in bytes."`
}

// Citizens configures what citizens can ask the OA. Every keyword is matched
// ignoring case and diacritics; every text has a Vietnamese default.
type Citizens struct {
	Places      string      `yaml:"places" doc:"The crosswalk of the province's communes and wards by current and former names (package places): CSV with columns current and former, or the same in YAML; relative to the config file."`
	Lookups     []Lookup    `yaml:"lookups" doc:"Questions answered from the records egov-bridge has synced."`
	Topics      []Topic     `yaml:"topics" doc:"What citizens subscribe to per commune or ward: DK <topic> <xã/phường>."`
	Subscribe   []string    `yaml:"subscribe" doc:"Keywords that subscribe: <keyword> <topic> <place> (default DK)."`
	Unsubscribe []string    `yaml:"unsubscribe" doc:"Keywords that unsubscribe (default HUY)."`
	Stop        []string    `yaml:"stop" doc:"Keywords after which the citizen gets no proactive message of any kind (default HUY TIN)."`
	Resume      []string    `yaml:"resume" doc:"Keywords that lift the stop (default DK TIN)."`
	Help        []string    `yaml:"help" doc:"Keywords that show the help (default HD)."`
	Feedback    Feedback    `yaml:"feedback" doc:"GOPY <nội dung>: feedback with a reference number, emitted as an event of entity feedback."`
	Rating      Rating      `yaml:"rating" doc:"DG <1-5>: a satisfaction rating of a dossier whose result was returned."`
	Texts       Texts       `yaml:"texts" doc:"The fixed replies; each has a Vietnamese default."`
	RequestInfo RequestInfo `yaml:"request_info" doc:"The card of Zalo's request-info form, which asks a citizen to share their phone number."`
}

// Lookup is one question citizens can ask, answered from a synced entity.
type Lookup struct {
	Keywords []string  `yaml:"keywords" required:"true" doc:"What the citizen types first, matched ignoring case and diacritics." example:"[HS, HOSO]"`
	Usage    string    `yaml:"usage" doc:"The look-up's line in the help." example:"\"HS <mã hồ sơ>: tình trạng hồ sơ\""`
	Entity   string    `yaml:"entity" required:"true" doc:"The entity whose synced records answer." example:"dossier"`
	Field    string    `yaml:"field" doc:"The record field the citizen types, compared folded; or give area." example:"code"`
	Area     []string  `yaml:"area" doc:"Fields whose text names communes or wards; the citizen types a place (needs places)." example:"[commune, area]"`
	Owner    string    `yaml:"owner" doc:"The record's phone field: the record is shown only to the citizen whose linked phone equals it." example:"phone"`
	Upcoming *Upcoming `yaml:"upcoming" doc:"Keeps records whose end is not past and whose start is within days."`
	Unless   string    `yaml:"unless" doc:"A boolean field that hides a record when true (a cancelled outage)." example:"cancelled"`
	Reply    string    `yaml:"reply" required:"true" doc:"Go template rendering one record over its fields, with date, time, datetime, choose and mask_phone."`
	Header   string    `yaml:"header" doc:"Template before the records; .query is what was asked, .place the place."`
	NotFound string    `yaml:"not_found" doc:"Template when nothing is found (.query, .place)."`
	Max      int       `yaml:"max" min:"0" doc:"Records in one answer; 0 means 5."`
}

// Upcoming bounds a look-up to what is ahead.
type Upcoming struct {
	Start string `yaml:"start" required:"true" doc:"The field holding the start time." example:"start"`
	End   string `yaml:"end" required:"true" doc:"The field holding the end time." example:"end"`
	Days  int    `yaml:"days" min:"0" doc:"How many days ahead; 0 means 7."`
}

// Topic is something citizens subscribe to per place.
type Topic struct {
	Name  string   `yaml:"name" required:"true" doc:"The word after DK and HUY." example:"CUPDIEN"`
	Label string   `yaml:"label" doc:"The topic in replies." example:"lịch cắt điện"`
	Rules []string `yaml:"rules" required:"true" doc:"Rule events routed to the sink that go to the topic's subscribers instead (globs)." example:"[\"outage.*\"]"`
	Area  []string `yaml:"area" doc:"The event's fields whose text names communes or wards; default the message's audience." example:"[commune, area]"`
}

// Feedback is GOPY <nội dung>.
type Feedback struct {
	Keywords []string `yaml:"keywords" doc:"Keywords of feedback (default GOPY)."`
	Agency   string   `yaml:"agency" doc:"The agency of feedback events, so routes send them to its dashboards."`
	Reply    string   `yaml:"reply" doc:"Template of the acknowledgement (.ref, the reference number)."`
}

// Rating is DG <1-5>: satisfaction with a dossier whose result was returned.
type Rating struct {
	Keywords    []string `yaml:"keywords" doc:"Keywords of a rating (default DG)."`
	Entity      string   `yaml:"entity" doc:"The dossiers' entity (default dossier)."`
	Owner       string   `yaml:"owner" doc:"The dossiers' phone field (default phone)."`
	Code        string   `yaml:"code" doc:"The field a citizen may name after the score (default code)."`
	Status      string   `yaml:"status" doc:"The status field (default status)."`
	Returned    []string `yaml:"returned" doc:"Status values meaning the result was returned (default 10)."`
	Finished    string   `yaml:"finished" doc:"The time field that picks the latest dossier (default finished_at)."`
	AgencyField string   `yaml:"agency_field" doc:"The field holding the dossier's agency, stored with the rating." example:"unit"`
	Reply       string   `yaml:"reply" doc:"Template of the acknowledgement (.code, .score)."`
}

// RequestInfo is the request-user-info template's card.
type RequestInfo struct {
	Title    string `yaml:"title" doc:"The form's title."`
	Subtitle string `yaml:"subtitle" doc:"The form's text."`
	ImageURL string `yaml:"image_url" doc:"The form's image (optional)."`
}

// Texts are the fixed replies.
type Texts struct {
	Intro          string `yaml:"intro" doc:"First line of the help."`
	Unknown        string `yaml:"unknown" doc:"Before the help, for a message not understood."`
	NeedPhone      string `yaml:"need_phone" doc:"Sent with the request-info form when a look-up needs the phone the citizen has not shared."`
	NotYours       string `yaml:"not_yours" doc:"Template (.query) with the form: nothing of that for the shared phone, the same whether the record is somebody else's or missing."`
	UnknownPlace   string `yaml:"unknown_place" doc:"Template (.query): no commune or ward of that name."`
	Subscribed     string `yaml:"subscribed" doc:"Template (.topic, .place, .keyword, .query)."`
	Unsubscribed   string `yaml:"unsubscribed" doc:"Template (.topic, .place)."`
	NotSubscribed  string `yaml:"not_subscribed" doc:"Template (.topic, .place)."`
	Stopped        string `yaml:"stopped" doc:"After HUY TIN."`
	Resumed        string `yaml:"resumed" doc:"After DK TIN."`
	EmptyFeedback  string `yaml:"empty_feedback" doc:"GOPY without content."`
	BadRating      string `yaml:"bad_rating" doc:"DG without a score from 1 to 5."`
	NothingToRate  string `yaml:"nothing_to_rate" doc:"No returned dossier of the citizen's phone."`
	FeedbackAnswer string `yaml:"feedback_answer" doc:"Template (.ref, .answer) of an agency's answer to feedback."`
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
