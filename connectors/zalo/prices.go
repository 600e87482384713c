package zalo

import (
	"errors"
	"strconv"
)

// NoticePrices are the sink's prices in đồng per message (OA, ZNS, and the SMS a
// notice would otherwise cost), for the steering figures' saving.
func (s *Sink) NoticePrices() (oa, zns, sms float64) {
	return s.o.Prices.OA, s.o.Prices.ZNS, s.o.Prices.SMS
}

// apiError counts an answer of Zalo's that carried an error code.
func (m *metrics) apiError(err error) {
	var ae *APIError
	if errors.As(err, &ae) {
		m.apiErrors.WithLabelValues(strconv.Itoa(ae.Code), ae.Class.String()).Inc()
	}
}
