package servername_test

import (
	"fmt"

	"github.com/bordergate/bordergate/gateway/servername"
)

func ExampleSplit() {
	for _, name := range []string{"matrix.org", "matrix.org:8888", "[1234:5678::abcd]:5678", "matrix.org:99999"} {
		host, port, err := servername.Split(name)
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
	// invalid server name "matrix.org:99999": port 99999 out of range 1-65535
}
