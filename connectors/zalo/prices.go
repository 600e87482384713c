package zalo

// NoticePrices are the sink's prices in đồng per message (OA, ZNS, and the SMS a
// notice would otherwise cost), for the steering figures' saving.
func (s *Sink) NoticePrices() (oa, zns, sms float64) {
	return s.o.Prices.OA, s.o.Prices.ZNS, s.o.Prices.SMS
}
