package nova

import (
	"net/http"
	"testing"
)

func TestParseMicroversion(t *testing.T) {
	for _, c := range []struct {
		hdr  map[string]string
		want string
		err  bool
	}{
		{nil, "2.1", false},
		{map[string]string{"OpenStack-API-Version": "compute 2.53"}, "2.53", false},
		{map[string]string{"OpenStack-API-Version": "image 2.9, compute 2.30"}, "2.30", false},
		{map[string]string{"X-OpenStack-Nova-API-Version": "2.25"}, "2.25", false},
		{map[string]string{"OpenStack-API-Version": "compute 2.40", "X-OpenStack-Nova-API-Version": "2.25"}, "2.40", false},
		{map[string]string{"OpenStack-API-Version": "compute latest"}, MaxVersion.String(), false},
		{map[string]string{"OpenStack-API-Version": "compute 2.999"}, "", true},
		{map[string]string{"OpenStack-API-Version": "compute 1.1"}, "", true},
		{map[string]string{"OpenStack-API-Version": "compute two"}, "", true},
	} {
		h := http.Header{}
		for k, v := range c.hdr {
			h.Set(k, v)
		}
		v, err := ParseMicroversion(h)
		if (err != nil) != c.err || (err == nil && v.String() != c.want) {
			t.Errorf("%v: %v, %v; want %s (error %v)", c.hdr, v, err, c.want, c.err)
		}
	}
}
