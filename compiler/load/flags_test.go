package load

import "flag"

var printGot = flag.Bool("print", false, "print the diagnostics of the invalid cases")
