package testpg

import "testing"

func TestSchemaIsIsolated(t *testing.T) {
	dsn, schema := Schema(t)
	db := Open(t, dsn)
	if _, err := db.Exec(`CREATE TABLE probe (id int)`); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRow(`SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != schema {
		t.Fatalf("table landed in schema %q, want %q", got, schema)
	}
}
