// Behavioural model of the Lattice ECP5 MULT18X18D (sysDSP 18x18 multiplier) for simulating
// netlists that instantiate it (rtl/multiplier.py, and Yosys's ECP5 mapping), written from
// Lattice's ECP5 sysDSP usage guide (FPGA-TN-02205): A and B (with SIGNEDA/SIGNEDB) pass an
// optional input register, the 36-bit product P = A * B an optional pipeline and output
// register; each register names its clock (CLK0..3 or NONE), clock enable (CE0..3) and
// synchronous reset (RST0..3, RESETMODE "SYNC": the register clears at the clock edge).
// Modes modelled: every input/output register setting; C, SOURCEA/B, the shift chains and
// the pipeline register are not (C and SOURCE must be 0, REG_PIPELINE_CLK "NONE";
// anything else stops the simulation with an error). ROA/ROB (the registered operands) and
// SIGNEDP are driven; ROC and the SRO shift outputs read 0. Yosys ships only a black box of
// this cell (cells_bb_ecp5.v); tests/test_multiplier.py checks this model.
`timescale 1ns / 1ps
module MULT18X18D(A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0, B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0, C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0, SIGNEDA, SIGNEDB, SOURCEA, SOURCEB, CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0, SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0, SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0, SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0, SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0, ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0, ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0, ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0, P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0, SIGNEDP);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";
    input A17;
    input A16;
    input A15;
    input A14;
    input A13;
    input A12;
    input A11;
    input A10;
    input A9;
    input A8;
    input A7;
    input A6;
    input A5;
    input A4;
    input A3;
    input A2;
    input A1;
    input A0;
    input B17;
    input B16;
    input B15;
    input B14;
    input B13;
    input B12;
    input B11;
    input B10;
    input B9;
    input B8;
    input B7;
    input B6;
    input B5;
    input B4;
    input B3;
    input B2;
    input B1;
    input B0;
    input C17;
    input C16;
    input C15;
    input C14;
    input C13;
    input C12;
    input C11;
    input C10;
    input C9;
    input C8;
    input C7;
    input C6;
    input C5;
    input C4;
    input C3;
    input C2;
    input C1;
    input C0;
    input SIGNEDA;
    input SIGNEDB;
    input SOURCEA;
    input SOURCEB;
    input CLK3;
    input CLK2;
    input CLK1;
    input CLK0;
    input CE3;
    input CE2;
    input CE1;
    input CE0;
    input RST3;
    input RST2;
    input RST1;
    input RST0;
    input SRIA17;
    input SRIA16;
    input SRIA15;
    input SRIA14;
    input SRIA13;
    input SRIA12;
    input SRIA11;
    input SRIA10;
    input SRIA9;
    input SRIA8;
    input SRIA7;
    input SRIA6;
    input SRIA5;
    input SRIA4;
    input SRIA3;
    input SRIA2;
    input SRIA1;
    input SRIA0;
    input SRIB17;
    input SRIB16;
    input SRIB15;
    input SRIB14;
    input SRIB13;
    input SRIB12;
    input SRIB11;
    input SRIB10;
    input SRIB9;
    input SRIB8;
    input SRIB7;
    input SRIB6;
    input SRIB5;
    input SRIB4;
    input SRIB3;
    input SRIB2;
    input SRIB1;
    input SRIB0;
    output SROA17;
    output SROA16;
    output SROA15;
    output SROA14;
    output SROA13;
    output SROA12;
    output SROA11;
    output SROA10;
    output SROA9;
    output SROA8;
    output SROA7;
    output SROA6;
    output SROA5;
    output SROA4;
    output SROA3;
    output SROA2;
    output SROA1;
    output SROA0;
    output SROB17;
    output SROB16;
    output SROB15;
    output SROB14;
    output SROB13;
    output SROB12;
    output SROB11;
    output SROB10;
    output SROB9;
    output SROB8;
    output SROB7;
    output SROB6;
    output SROB5;
    output SROB4;
    output SROB3;
    output SROB2;
    output SROB1;
    output SROB0;
    output ROA17;
    output ROA16;
    output ROA15;
    output ROA14;
    output ROA13;
    output ROA12;
    output ROA11;
    output ROA10;
    output ROA9;
    output ROA8;
    output ROA7;
    output ROA6;
    output ROA5;
    output ROA4;
    output ROA3;
    output ROA2;
    output ROA1;
    output ROA0;
    output ROB17;
    output ROB16;
    output ROB15;
    output ROB14;
    output ROB13;
    output ROB12;
    output ROB11;
    output ROB10;
    output ROB9;
    output ROB8;
    output ROB7;
    output ROB6;
    output ROB5;
    output ROB4;
    output ROB3;
    output ROB2;
    output ROB1;
    output ROB0;
    output ROC17;
    output ROC16;
    output ROC15;
    output ROC14;
    output ROC13;
    output ROC12;
    output ROC11;
    output ROC10;
    output ROC9;
    output ROC8;
    output ROC7;
    output ROC6;
    output ROC5;
    output ROC4;
    output ROC3;
    output ROC2;
    output ROC1;
    output ROC0;
    output P35;
    output P34;
    output P33;
    output P32;
    output P31;
    output P30;
    output P29;
    output P28;
    output P27;
    output P26;
    output P25;
    output P24;
    output P23;
    output P22;
    output P21;
    output P20;
    output P19;
    output P18;
    output P17;
    output P16;
    output P15;
    output P14;
    output P13;
    output P12;
    output P11;
    output P10;
    output P9;
    output P8;
    output P7;
    output P6;
    output P5;
    output P4;
    output P3;
    output P2;
    output P1;
    output P0;
    output SIGNEDP;

    wire [3:0] clk = {CLK3, CLK2, CLK1, CLK0};
    wire [3:0] ce = {CE3, CE2, CE1, CE0};
    wire [3:0] rst = {RST3, RST2, RST1, RST0};

    // The index (0..3) a "CLKn"/"CEn"/"RSTn" parameter names; 4 for "NONE".
    function integer pick(input [8*4-1:0] name);
        begin
            if (name == "NONE") pick = 4;
            else pick = name[7:0] - "0";
        end
    endfunction

    localparam integer A_CLK = pick(REG_INPUTA_CLK), A_CE = pick(REG_INPUTA_CE),
        A_RST = pick(REG_INPUTA_RST);
    localparam integer B_CLK = pick(REG_INPUTB_CLK), B_CE = pick(REG_INPUTB_CE),
        B_RST = pick(REG_INPUTB_RST);
    localparam integer P_CLK = pick(REG_OUTPUT_CLK), P_CE = pick(REG_OUTPUT_CE),
        P_RST = pick(REG_OUTPUT_RST);

    initial begin
        if (REG_PIPELINE_CLK != "NONE" || RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED") begin
            $display("MULT18X18D model: mode not modelled (REG_PIPELINE_CLK=%s RESETMODE=%s MULT_BYPASS=%s)",
                     REG_PIPELINE_CLK, RESETMODE, MULT_BYPASS);
            $finish;
        end
    end
    always @(*) begin
        if ({C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0} !== 18'd0 || SOURCEA !== 1'b0 || SOURCEB !== 1'b0) begin
            if ($time > 0) begin
                $display("MULT18X18D model: C/SOURCEA/SOURCEB must be 0 (not modelled)");
                $finish;
            end
        end
    end

    wire [18:0] a_in = {SIGNEDA, {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0}};
    wire [18:0] b_in = {SIGNEDB, {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0}};
    reg [18:0] a_reg = 19'd0, b_reg = 19'd0;
    generate
        if (A_CLK < 4) begin : reg_a
            always @(posedge clk[A_CLK])
                if (rst[A_RST]) a_reg <= 19'd0;
                else if (ce[A_CE]) a_reg <= a_in;
        end
        if (B_CLK < 4) begin : reg_b
            always @(posedge clk[B_CLK])
                if (rst[B_RST]) b_reg <= 19'd0;
                else if (ce[B_CE]) b_reg <= b_in;
        end
    endgenerate
    wire [18:0] a = A_CLK < 4 ? a_reg : a_in;  // bit 18: the operand is signed
    wire [18:0] b = B_CLK < 4 ? b_reg : b_in;

    wire signed [36:0] a_ext = {{19{a[18] & a[17]}}, a[17:0]};
    wire signed [36:0] b_ext = {{19{b[18] & b[17]}}, b[17:0]};
    wire signed [36:0] product = a_ext * b_ext;
    reg [35:0] p_reg = 36'd0;
    reg sign_reg = 1'b0;
    generate
        if (P_CLK < 4) begin : reg_p
            always @(posedge clk[P_CLK])
                if (rst[P_RST]) begin
                    p_reg <= 36'd0;
                    sign_reg <= 1'b0;
                end else if (ce[P_CE]) begin
                    p_reg <= product[35:0];
                    sign_reg <= a[18] | b[18];
                end
        end
    endgenerate
    wire [35:0] p = P_CLK < 4 ? p_reg : product[35:0];
    wire [17:0] zero = 18'd0;
    assign P0 = p[0];
    assign P1 = p[1];
    assign P2 = p[2];
    assign P3 = p[3];
    assign P4 = p[4];
    assign P5 = p[5];
    assign P6 = p[6];
    assign P7 = p[7];
    assign P8 = p[8];
    assign P9 = p[9];
    assign P10 = p[10];
    assign P11 = p[11];
    assign P12 = p[12];
    assign P13 = p[13];
    assign P14 = p[14];
    assign P15 = p[15];
    assign P16 = p[16];
    assign P17 = p[17];
    assign P18 = p[18];
    assign P19 = p[19];
    assign P20 = p[20];
    assign P21 = p[21];
    assign P22 = p[22];
    assign P23 = p[23];
    assign P24 = p[24];
    assign P25 = p[25];
    assign P26 = p[26];
    assign P27 = p[27];
    assign P28 = p[28];
    assign P29 = p[29];
    assign P30 = p[30];
    assign P31 = p[31];
    assign P32 = p[32];
    assign P33 = p[33];
    assign P34 = p[34];
    assign P35 = p[35];
    assign SIGNEDP = P_CLK < 4 ? sign_reg : (a[18] | b[18]);
    assign ROA0 = a[0];
    assign ROA1 = a[1];
    assign ROA2 = a[2];
    assign ROA3 = a[3];
    assign ROA4 = a[4];
    assign ROA5 = a[5];
    assign ROA6 = a[6];
    assign ROA7 = a[7];
    assign ROA8 = a[8];
    assign ROA9 = a[9];
    assign ROA10 = a[10];
    assign ROA11 = a[11];
    assign ROA12 = a[12];
    assign ROA13 = a[13];
    assign ROA14 = a[14];
    assign ROA15 = a[15];
    assign ROA16 = a[16];
    assign ROA17 = a[17];
    assign ROB0 = b[0];
    assign ROB1 = b[1];
    assign ROB2 = b[2];
    assign ROB3 = b[3];
    assign ROB4 = b[4];
    assign ROB5 = b[5];
    assign ROB6 = b[6];
    assign ROB7 = b[7];
    assign ROB8 = b[8];
    assign ROB9 = b[9];
    assign ROB10 = b[10];
    assign ROB11 = b[11];
    assign ROB12 = b[12];
    assign ROB13 = b[13];
    assign ROB14 = b[14];
    assign ROB15 = b[15];
    assign ROB16 = b[16];
    assign ROB17 = b[17];
    assign ROC0 = zero[0];
    assign ROC1 = zero[1];
    assign ROC2 = zero[2];
    assign ROC3 = zero[3];
    assign ROC4 = zero[4];
    assign ROC5 = zero[5];
    assign ROC6 = zero[6];
    assign ROC7 = zero[7];
    assign ROC8 = zero[8];
    assign ROC9 = zero[9];
    assign ROC10 = zero[10];
    assign ROC11 = zero[11];
    assign ROC12 = zero[12];
    assign ROC13 = zero[13];
    assign ROC14 = zero[14];
    assign ROC15 = zero[15];
    assign ROC16 = zero[16];
    assign ROC17 = zero[17];
    assign SROA0 = a[0];
    assign SROA1 = a[1];
    assign SROA2 = a[2];
    assign SROA3 = a[3];
    assign SROA4 = a[4];
    assign SROA5 = a[5];
    assign SROA6 = a[6];
    assign SROA7 = a[7];
    assign SROA8 = a[8];
    assign SROA9 = a[9];
    assign SROA10 = a[10];
    assign SROA11 = a[11];
    assign SROA12 = a[12];
    assign SROA13 = a[13];
    assign SROA14 = a[14];
    assign SROA15 = a[15];
    assign SROA16 = a[16];
    assign SROA17 = a[17];
    assign SROB0 = b[0];
    assign SROB1 = b[1];
    assign SROB2 = b[2];
    assign SROB3 = b[3];
    assign SROB4 = b[4];
    assign SROB5 = b[5];
    assign SROB6 = b[6];
    assign SROB7 = b[7];
    assign SROB8 = b[8];
    assign SROB9 = b[9];
    assign SROB10 = b[10];
    assign SROB11 = b[11];
    assign SROB12 = b[12];
    assign SROB13 = b[13];
    assign SROB14 = b[14];
    assign SROB15 = b[15];
    assign SROB16 = b[16];
    assign SROB17 = b[17];
endmodule
