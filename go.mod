module github.com/godwit/godwit

go 1.26.8
