-- Plain GET with wrk's default request; only adds the JSON report.
dofile("report.lua")
