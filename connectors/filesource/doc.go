// Package filesource is the `file` source: CSV and Excel (.xlsx, through
// github.com/xuri/excelize/v2) files that an agency drops into a folder, or one
// file at a URL, read whole on every poll (pipeline.FullSet).
//
// A read lists the files once and pins each by size and modification time (or
// content hash for a URL); the rows are handed over in batches, and a file that
// changes in between fails the read. Files still being written are never read:
// temporary names (.tmp, .part, ~$…) are ignored, and a file younger than `settle`
// fails the poll until it has settled. Headers match the mapping's column names
// folded (no case, diacritics, spaces or punctuation); merged title rows are
// skipped; Excel serial dates are read in the source's zone and emitted in UTC.
package filesource
