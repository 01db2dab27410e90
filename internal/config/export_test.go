package config

// KindsForTest are the kinds of target the tests parse targets files with:
// shipbot's own, set by kinds_test.go (package config_test, which may
// import the drivers that import config).
var KindsForTest Kinds
