// A crash collector of the tests' own: an HTTP/1.1 server on 127.0.0.1 (a
// port the kernel picks) that records every request, splits multipart bodies
// into parts, and answers from a script (status, body, headers) or never
// answers at all. One thread serves; every read has a timeout, so a broken
// client cannot hold a test past its deadline. Header-only: the upload tests
// of the command and of the crash path share it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace panicstop::testing {

struct FormPart {
  std::string name, filename, content_type, data;
};

struct HttpRequest {
  std::string method, target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::vector<FormPart> parts;  // when the body is multipart/form-data

  const FormPart* part(const std::string& name) const {
    for (const FormPart& p : parts)
      if (p.name == name) return &p;
    return nullptr;
  }
};

struct Reply {
  int status = 200;
  std::string body = "{\"id\":\"0123456789abcdef0123456789abcdef\"}";
  std::vector<std::string> headers;  // "Name: value"
  bool hang = false;                 // read the request, never answer
};

class Collector {
 public:
  Collector() {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 16) != 0 || getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        pipe2(wake_, O_CLOEXEC) != 0)
      throw std::runtime_error("collector: cannot listen on 127.0.0.1");
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~Collector() {
    if (write(wake_[1], "x", 1) < 0) {
    }
    thread_.join();
    for (int fd : hanging_) close(fd);
    close(listen_fd_);
    close(wake_[0]);
    close(wake_[1]);
  }

  int port() const { return port_; }
  std::string url(const std::string& path = "/submit") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Answers in this order; the last one repeats.
  void script(std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    script_ = std::move(replies);
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

  // Waits until n requests arrived or timeout passed; true if they did.
  bool wait_for(size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mu_);
    return arrived_.wait_for(lock, timeout, [&] { return requests_.size() >= n; });
  }

 private:
  void serve() {
    for (;;) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents != 0) return;
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) handle(fd);
    }
  }

  static std::string lower(std::string s) {
    for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  // Reads until the headers and Content-Length bytes of body are in; a quiet
  // client gets 5 s.
  static bool read_request(int fd, HttpRequest* req) {
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string data;
    size_t header_end = std::string::npos;
    size_t need = 0;
    char buf[65536];
    for (;;) {
      if (header_end != std::string::npos && data.size() >= header_end + 4 + need) break;
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) return false;
      data.append(buf, size_t(n));
      if (header_end == std::string::npos && (header_end = data.find("\r\n\r\n")) != std::string::npos) {
        size_t line_end = data.find("\r\n");
        std::string first = data.substr(0, line_end);
        req->method = first.substr(0, first.find(' '));
        req->target = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
        size_t pos = line_end + 2;
        while (pos < header_end) {
          size_t end = data.find("\r\n", pos);
          std::string line = data.substr(pos, end - pos);
          size_t colon = line.find(':');
          if (colon != std::string::npos) {
            std::string value = line.substr(colon + 1);
            value.erase(0, value.find_first_not_of(' '));
            req->headers[lower(line.substr(0, colon))] = value;
          }
          pos = end + 2;
        }
        need = req->headers.count("content-length") ? std::stoul(req->headers["content-length"]) : 0;
      }
    }
    req->body = data.substr(header_end + 4, need);
    split_parts(req);
    return true;
  }

  static std::string attribute(const std::string& header, const std::string& name) {
    size_t at = header.find(name + "=\"");
    if (at == std::string::npos) return "";
    at += name.size() + 2;
    return header.substr(at, header.find('"', at) - at);
  }

  static void split_parts(HttpRequest* req) {
    const std::string& type = req->headers["content-type"];
    size_t b = type.find("boundary=");
    if (type.rfind("multipart/form-data", 0) != 0 || b == std::string::npos) return;
    std::string delimiter = "--" + type.substr(b + 9);
    size_t pos = req->body.find(delimiter);
    while (pos != std::string::npos) {
      pos += delimiter.size();
      if (req->body.compare(pos, 2, "--") == 0) break;
      size_t head_end = req->body.find("\r\n\r\n", pos);
      size_t next = req->body.find("\r\n" + delimiter, head_end);
      if (head_end == std::string::npos || next == std::string::npos) break;
      std::string head = req->body.substr(pos, head_end - pos);
      FormPart p;
      size_t disposition = lower(head).find("content-disposition:");
      std::string disp = disposition == std::string::npos ? "" : head.substr(disposition, head.find("\r\n", disposition + 2) - disposition);
      p.name = attribute(disp, "name");
      p.filename = attribute(disp, "filename");
      size_t ct = lower(head).find("content-type:");
      if (ct != std::string::npos) {
        size_t end = head.find("\r\n", ct);
        p.content_type = head.substr(ct + 14, end == std::string::npos ? std::string::npos : end - ct - 14);
      }
      p.data = req->body.substr(head_end + 4, next - head_end - 4);
      req->parts.push_back(std::move(p));
      pos = next + 2;
    }
  }

  void handle(int fd) {
    HttpRequest req;
    if (!read_request(fd, &req)) {
      close(fd);
      return;
    }
    Reply reply;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!script_.empty()) reply = script_[std::min(requests_.size(), script_.size() - 1)];
      requests_.push_back(std::move(req));
    }
    arrived_.notify_all();
    if (reply.hang) {
      hanging_.push_back(fd);
      return;
    }
    std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " Scripted\r\nConnection: close\r\n" +
                      "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
    for (const std::string& h : reply.headers) out += h + "\r\n";
    out += "\r\n" + reply.body;
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = write(fd, out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += size_t(n);
    }
    close(fd);
  }

  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  int port_ = 0;
  std::thread thread_;
  std::vector<int> hanging_;
  mutable std::mutex mu_;
  mutable std::condition_variable arrived_;
  std::vector<Reply> script_;
  std::vector<HttpRequest> requests_;
};

}  // namespace panicstop::testing
