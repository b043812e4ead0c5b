package keys_test

import (
	"fmt"

	"github.com/bordergate/bordergate/gateway/keys"
)

func ExampleSplitServerName() {
	for _, name := range []string{"matrix.org", "matrix.org:8888", "[1234:5678::abcd]:5678", "matrix.org:99999"} {
		host, port, err := keys.SplitServerName(name)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(host, port)
	}
	// Output:
	// matrix.org 0
	// matrix.org 8888
	// 1234:5678::abcd 5678
	// invalid server name "matrix.org:99999": port 99999 is outside 1 to 65535
}
